/**
 * A capacity model of D1 for the benchmark's simulation (issue #15): a D1 database runs one query at
 * a time, so each binding wrapped here serves one statement at a time per name and per isolate, and
 * each statement occupies it for at least `serviceMs` (a batch of k statements, or an exec of k, for
 * k × serviceMs as one unit). The real call runs inside the slot; results, errors and meta pass
 * through untouched. Never enabled in production: the DB factory wraps bindings only when
 * D1_SERVICE_TIME_MS > 0.
 */

/** D1's limit on one query's duration: a holder silent for longer than this is taken to be gone. */
const STALE_AFTER_MS = 30_000;

const wait = (ms: number): Promise<void> =>
  typeof scheduler !== "undefined" && typeof scheduler?.wait === "function"
    ? scheduler.wait(ms)
    : new Promise((resolve) => setTimeout(resolve, ms));

interface Holder {
  since: number;
  budgetMs: number;
}

/** One simulated database: who holds it and who waits, in arrival order. */
class Lane {
  holder: Holder | undefined;
  private readonly queue: { grant(holder: Holder): void; budgetMs: number }[] = [];

  async acquire(budgetMs: number): Promise<Holder> {
    if (!this.holder) return this.handTo(budgetMs);
    const granted = new Promise<Holder>((grant) => this.queue.push({ grant, budgetMs }));
    // The hand-off runs in the releasing request's context; if a holder's context never resumes
    // (a cancelled request), the waiters' own timers move the lane on, so it cannot wedge for good.
    const watchdog = setInterval(() => {
      const h = this.holder;
      if (h && Date.now() - h.since > h.budgetMs + STALE_AFTER_MS) this.release(h);
    }, STALE_AFTER_MS / 4);
    try {
      return await granted;
    } finally {
      clearInterval(watchdog);
    }
  }

  release(holder: Holder): void {
    if (this.holder !== holder) return;
    this.holder = undefined;
    const next = this.queue.shift();
    if (next) next.grant(this.handTo(next.budgetMs));
  }

  private handTo(budgetMs: number): Holder {
    this.holder = { since: Date.now(), budgetMs };
    return this.holder;
  }
}

const lanes = new Map<string, Lane>();

/** Runs `work` in `name`'s slot and keeps the slot until `units(result) × serviceMs` has passed. */
async function occupy<T>(
  name: string,
  serviceMs: number,
  units: number | ((result: T) => number),
  work: () => Promise<T>,
): Promise<T> {
  let lane = lanes.get(name);
  if (!lane) {
    lane = new Lane();
    lanes.set(name, lane);
  }
  const expected = typeof units === "number" ? units : 1;
  const holder = await lane.acquire(expected * serviceMs);
  const started = Date.now();
  try {
    const result = await work();
    const n = typeof units === "number" ? units : units(result);
    const left = started + n * serviceMs - Date.now();
    if (left > 0) await wait(left);
    return result;
  } catch (err) {
    const left = started + expected * serviceMs - Date.now();
    if (left > 0) await wait(left);
    throw err;
  } finally {
    lane.release(holder);
  }
}

class GatedStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    private readonly name: string,
    private readonly serviceMs: number,
  ) {}

  bind(...values: unknown[]): D1PreparedStatement {
    return gatedStatement(this.inner.bind(...values), this.name, this.serviceMs);
  }

  first<T>(colName?: string): Promise<T | null> {
    return occupy(this.name, this.serviceMs, 1, () =>
      colName === undefined ? this.inner.first<T>() : this.inner.first<T>(colName),
    );
  }

  run<T>(): Promise<D1Result<T>> {
    return occupy(this.name, this.serviceMs, 1, () => this.inner.run<T>());
  }

  all<T>(): Promise<D1Result<T>> {
    return occupy(this.name, this.serviceMs, 1, () => this.inner.all<T>());
  }

  raw(options?: { columnNames?: boolean }): Promise<unknown[]> {
    return occupy(this.name, this.serviceMs, 1, () =>
      options === undefined
        ? this.inner.raw()
        : (this.inner.raw(options as { columnNames: true }) as Promise<unknown[]>),
    );
  }
}

const gatedStatement = (inner: D1PreparedStatement, name: string, serviceMs: number): D1PreparedStatement =>
  new GatedStatement(inner, name, serviceMs) as unknown as D1PreparedStatement;

/** The binding's own statements: a real batch refuses anything it did not prepare. */
const unwrap = (statements: D1PreparedStatement[]): D1PreparedStatement[] =>
  statements.map((s) => (s instanceof GatedStatement ? s.inner : s));

/** The D1 surface Parley uses, with every statement served through `name`'s single slot. */
export function gateD1(d1: D1Database, name: string, serviceMs: number): D1Database {
  if (!(serviceMs > 0)) return d1;
  const batchOf =
    (target: Pick<D1Database, "batch">) =>
    <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> =>
      occupy(name, serviceMs, statements.length, () => target.batch<T>(unwrap(statements)));
  const gated: Omit<D1Database, "dump"> = {
    prepare: (query) => gatedStatement(d1.prepare(query), name, serviceMs),
    batch: batchOf(d1),
    // How many statements an exec holds is only known from its result.
    exec: (query) =>
      occupy(
        name,
        serviceMs,
        (r: D1ExecResult) => Math.max(1, r.count),
        () => d1.exec(query),
      ),
    withSession(constraintOrBookmark) {
      const session = d1.withSession(constraintOrBookmark);
      return {
        prepare: (query) => gatedStatement(session.prepare(query), name, serviceMs),
        batch: batchOf(session),
        getBookmark: () => session.getBookmark(),
      };
    },
  };
  return { ...gated, dump: () => occupy(name, serviceMs, 1, () => d1.dump()) } as D1Database;
}
