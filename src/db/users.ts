import { eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { PasswordHash } from "../lib/passwords";
import { isUsername, usernameKey } from "../lib/usernames";
import { users } from "./schema";

export type UserRow = typeof users.$inferSelect;

const byUsername = (username: string) => eq(sql`lower(${users.username})`, usernameKey(username));

export function isUniqueViolation(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (/UNIQUE constraint failed/i.test(e.message)) return true;
  }
  return false;
}

/** Inserts a user; `null` if the username is taken (compared without regard to case). */
export async function insertUser(
  db: Database,
  input: { username: string; password: PasswordHash; publicKey: Uint8Array },
): Promise<UserRow | null> {
  try {
    const [row] = await db
      .insert(users)
      .values({
        username: input.username,
        passwordHash: input.password.hash,
        passwordSalt: input.password.salt,
        passwordAlgorithm: input.password.algorithm,
        passwordIterations: input.password.iterations,
        publicKey: input.publicKey,
        createdAt: new Date().toISOString(),
      })
      .returning();
    return row ?? null;
  } catch (err) {
    if (isUniqueViolation(err)) return null;
    throw err;
  }
}

/** The user named `username` (case-insensitively, ASCII only); a name outside the rule matches nobody. */
export async function findUserByUsername(db: Database, username: string): Promise<UserRow | undefined> {
  if (!isUsername(username)) return undefined;
  return db.select().from(users).where(byUsername(username)).get();
}

export async function findUserById(db: Database, id: number): Promise<UserRow | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

export async function findUsersByUsernames(
  db: Database,
  usernames: string[],
): Promise<Pick<UserRow, "id" | "username">[]> {
  const valid = usernames.filter(isUsername);
  if (valid.length === 0) return [];
  return db
    .select({ id: users.id, username: users.username })
    .from(users)
    .where(sql`lower(${users.username}) in (select value from json_each(${JSON.stringify(valid.map(usernameKey))}))`);
}

export async function updatePasswordHash(db: Database, id: number, password: PasswordHash): Promise<void> {
  await db
    .update(users)
    .set({
      passwordHash: password.hash,
      passwordSalt: password.salt,
      passwordAlgorithm: password.algorithm,
      passwordIterations: password.iterations,
    })
    .where(eq(users.id, id));
}

export async function updatePublicKey(db: Database, id: number, publicKey: Uint8Array): Promise<UserRow | undefined> {
  return db.update(users).set({ publicKey }).where(eq(users.id, id)).returning().get();
}
