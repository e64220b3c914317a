import type { z } from "@hono/zod-openapi";

/** True when each type is assignable to the other: a field missing, extra or retyped on either side fails. */
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Drift<Wire> = { "this schema differs from its contract type": Wire };

/**
 * Ties a response schema to its type in `contract/`: the schema's output must be exactly the wire
 * type, so a change on either side fails to compile (and `npm test` typechecks first).
 */
export const responseOf =
  <Wire>() =>
  <S extends z.ZodType>(schema: S & (SameShape<z.output<S>, Wire> extends true ? unknown : Drift<Wire>)): S =>
    schema;

/** The same for a request body: what the client sends (the schema's input) is the wire type. */
export const requestOf =
  <Wire>() =>
  <S extends z.ZodType>(schema: S & (SameShape<z.input<S>, Wire> extends true ? unknown : Drift<Wire>)): S =>
    schema;
