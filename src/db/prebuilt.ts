import { type Column, fillPlaceholders, type Query, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Database } from "../env";

/*
 * Statements built once per isolate and bound per request. Drizzle writes a statement's SQL text by
 * walking its query objects, which a profile of `POST /messages` showed to be a large share of the
 * request's CPU. The hot statements are therefore built once, with named placeholders where values
 * go (`slot`), and each request only binds its values to the cached text: the same SQL from the
 * same builders, without building it again.
 */

/** Builds statements, never runs them (its client is never called). */
const builder: Database = drizzle({} as D1Database);

/** A named placeholder standing in for a value of type `T` in a builder (bound by `Prebuilt.bind`). */
export const slot = <T>(name: string): T => sql.placeholder(name) as unknown as T;

export class Prebuilt {
  #query: Query | undefined;

  constructor(private readonly build: (db: Database) => { toSQL(): Query }) {}

  /** The statement on `db`'s connection with `values` bound to its placeholders. */
  bind(db: Database, values: Record<string, unknown>): D1PreparedStatement {
    this.#query ??= this.build(builder).toSQL();
    return db.$client.prepare(this.#query.sql).bind(...fillPlaceholders(this.#query.params, values));
  }
}

/** Prebuilt statements by shape (e.g. with or without attachments), each built the first time it is needed. */
export class PrebuiltShapes<Key extends string> {
  readonly #shapes = new Map<Key, Prebuilt>();

  constructor(private readonly build: (db: Database, key: Key) => { toSQL(): Query }) {}

  bind(db: Database, key: Key, values: Record<string, unknown>): D1PreparedStatement {
    let shape = this.#shapes.get(key);
    if (!shape) {
      shape = new Prebuilt((builderDb) => this.build(builderDb, key));
      this.#shapes.set(key, shape);
    }
    return shape.bind(db, values);
  }
}

/** A raw row (column names as stored) as Drizzle would return it for `columns` (keys and types). */
export function mapRow<T>(columns: Record<string, Column>, raw: Record<string, unknown>): T {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(columns)) {
    const value = raw[column.name];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as T;
}
