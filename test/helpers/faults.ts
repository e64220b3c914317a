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
