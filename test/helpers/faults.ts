import { env } from "cloudflare:workers";
import { onTestFinished, vi } from "vitest";

const RUNS = new Set(["run", "all", "first", "raw"]);

/**
 * A fault shared by any number of D1 bindings: the Nth statement executed through any of them fails
 * (counting from 1, statements inside a batch included, in the order they are sent). Inside a batch
 * the Nth statement is swapped for one that fails in D1 itself, so the batch really is cut short
 * mid-transaction and D1 rolls it back. Statements whose SQL matches `spare` are run as they are and
 * not counted. Sessions opened on a wrapped binding (`withSession`, as every request does:
 * src/db/bookmarks.ts) are wrapped the same way and share the count.
 */
export function sharedFault(failAt: number, spare?: RegExp) {
  let count = 0;
  const sql = new WeakMap<object, string>();
  const shouldFail = (statement: object) => !spare?.test(sql.get(statement) ?? "") && ++count === failAt;
  const real = new WeakMap<object, D1PreparedStatement>();

  type Handle = Pick<D1Database, "prepare" | "batch">;
  const wrapHandle = <T extends Handle>(handle: T): T => {
    const broken = () => handle.prepare("select * from fault_injected_no_such_table");
    const wrap = (statement: D1PreparedStatement, query: string): D1PreparedStatement => {
      const proxy = new Proxy(statement, {
        get(target, prop) {
          if (prop === "bind") return (...values: unknown[]) => wrap(target.bind(...values), query);
          if (typeof prop === "string" && RUNS.has(prop)) {
            return (...args: unknown[]) => {
              const chosen = shouldFail(proxy) ? broken() : target;
              return (chosen[prop as "all"] as (...a: unknown[]) => unknown).apply(chosen, args);
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      real.set(proxy, statement);
      sql.set(proxy, query);
      return proxy;
    };
    return new Proxy(handle, {
      get(target, prop) {
        if (prop === "prepare") return (query: string) => wrap(target.prepare(query), query);
        if (prop === "batch") {
          return (statements: D1PreparedStatement[]) =>
            target.batch(statements.map((s) => (shouldFail(s) ? broken() : (real.get(s) ?? s))));
        }
        if (prop === "withSession") {
          return (...args: Parameters<D1Database["withSession"]>) =>
            wrapHandle((target as unknown as D1Database).withSession(...args));
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
  return { wrap: (db: D1Database): D1Database => wrapHandle(db), executed: () => count };
}

/** One D1 binding whose Nth statement fails (see `sharedFault`). */
export function failingD1(db: D1Database, failAt: number, spare?: RegExp): { db: D1Database; executed: () => number } {
  const fault = sharedFault(failAt, spare);
  return { db: fault.wrap(db), executed: fault.executed };
}

type ObjectBinding = "CONVERSATION_ROOM" | "USER_INBOX";

/**
 * Makes every call of `method` on the object named `stub.id.name` fail until the test ends (or
 * its next `times` calls only), as an unreachable or overloaded object does: the caller's RPC
 * promise rejects. The failure is made on the caller's side, through the binding the Worker and
 * the objects share in this runtime, so the runtime does not also log it as the object's own
 * uncaught exception. What the code logs about it is captured, not printed: `logged()` returns
 * those lines for the test to check.
 */
export async function makeObjectThrow(
  stub: DurableObjectStub,
  method: string,
  times = Infinity,
): Promise<{ logged: () => string[] }> {
  const name = stub.id.name;
  const binding = bindingOf(stub);
  const namespace = env[binding];
  let left = times;
  const failing = (target: DurableObjectStub) =>
    new Proxy(target, {
      get(real, prop) {
        if (prop !== method) return Reflect.get(real, prop);
        return (...args: unknown[]) => {
          if (left <= 0) return (real as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
          left -= 1;
          return Promise.reject(new Error(`${method} down (injected)`));
        };
      },
    });
  const wrapped = new Proxy(namespace, {
    get(real, prop) {
      if (prop === "getByName") {
        return (objectName: string) => {
          const target = real.getByName(objectName);
          return objectName === name ? failing(target) : target;
        };
      }
      const value = Reflect.get(real, prop, real);
      return typeof value === "function" ? value.bind(real) : value;
    },
  });
  Object.defineProperty(env, binding, { value: wrapped, configurable: true, writable: true });
  const errors = vi.spyOn(console, "error").mockImplementation(() => {});
  onTestFinished(() => {
    Object.defineProperty(env, binding, { value: namespace, configurable: true, writable: true });
    errors.mockRestore();
  });
  return { logged: () => errors.mock.calls.map((args) => args.map(String).join(" ")) };
}

function bindingOf(stub: DurableObjectStub): ObjectBinding {
  const id = stub.id.toString();
  const bindings: ObjectBinding[] = ["CONVERSATION_ROOM", "USER_INBOX"];
  const found = bindings.find((binding) => env[binding].idFromName(stub.id.name ?? "").toString() === id);
  if (!found) throw new Error("makeObjectThrow: a stub from getByName of CONVERSATION_ROOM or USER_INBOX");
  return found;
}
