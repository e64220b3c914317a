import { runInDurableObject } from "cloudflare:test";
import { onTestFinished } from "vitest";

const RUNS = new Set(["run", "all", "first", "raw"]);

/**
 * Wraps a real D1 binding so that the Nth statement it is asked to execute fails (counting from 1,
 * statements inside a batch included). Inside a batch the Nth statement is swapped for one that
 * fails in D1 itself, so the batch really is cut short mid-transaction and D1 rolls it back.
 */
export function failingD1(db: D1Database, failAt: number): { db: D1Database; executed: () => number } {
  let count = 0;
  const shouldFail = () => ++count === failAt;
  const broken = () => db.prepare("select * from fault_injected_no_such_table");
  const real = new WeakMap<object, D1PreparedStatement>();

  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrap(target.bind(...values));
        if (typeof prop === "string" && RUNS.has(prop)) {
          return (...args: unknown[]) => {
            const chosen = shouldFail() ? broken() : target;
            return (chosen[prop as "all"] as (...a: unknown[]) => unknown).apply(chosen, args);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, statement);
    return proxy;
  };

  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) =>
          target.batch(statements.map((s) => (shouldFail() ? broken() : (real.get(s) ?? s))));
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: wrapped, executed: () => count };
}

/**
 * Makes `method` of the one Durable Object behind `stub` throw until the test ends (or for its
 * next `times` calls only). RPC only reaches prototype methods, so the class's method is wrapped
 * and fails only for that object's name.
 */
export async function makeObjectThrow(stub: DurableObjectStub, method: string, times = Infinity): Promise<void> {
  const name = stub.id.name;
  let left = times;
  const restore = await runInDurableObject(stub, (instance: DurableObject) => {
    const proto = Object.getPrototypeOf(instance) as Record<string, (...args: unknown[]) => unknown>;
    const original = proto[method]!;
    proto[method] = async function (this: { ctx: DurableObjectState }, ...args: unknown[]) {
      if (this.ctx.id.name === name && left-- > 0) throw new Error(`${method} down (injected)`);
      return original.apply(this, args);
    };
    return () => {
      proto[method] = original;
    };
  });
  onTestFinished(restore);
}
