import { eq, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { PasswordHash } from "../lib/passwords";
import { isUsername, usernameKey } from "../lib/usernames";
import { devices, users } from "./schema/directory";

export type UserRow = typeof users.$inferSelect;

const byUsername = (username: string) => eq(sql`lower(${users.username})`, usernameKey(username));

export function isUniqueViolation(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (/UNIQUE constraint failed/i.test(e.message)) return true;
  }
  return false;
}

export interface DeviceKeys {
  name: string;
  identityKey: Uint8Array;
  signingKey: Uint8Array;
  signature: Uint8Array;
}

/** Inserts a user and its first, active device in one batch; `null` if the username is taken (without regard to case). */
export async function insertUser(
  db: Database,
  input: { username: string; password: PasswordHash; accountKey: Uint8Array; device: DeviceKeys },
): Promise<{ user: UserRow; deviceId: number } | null> {
  const now = new Date().toISOString();
  try {
    const [[user], [device]] = await db.batch([
      db
        .insert(users)
        .values({
          username: input.username,
          passwordHash: input.password.hash,
          passwordSalt: input.password.salt,
          passwordAlgorithm: input.password.algorithm,
          passwordIterations: input.password.iterations,
          accountKey: input.accountKey,
          createdAt: now,
        })
        .returning(),
      db
        .insert(devices)
        .values({
          ...input.device,
          userId: sql`(select max(${users.id}) from ${users})`,
          status: "active",
          createdAt: now,
        })
        .returning({ id: devices.id }),
    ]);
    return { user: user!, deviceId: device!.id };
  } catch (err) {
    if (isUniqueViolation(err)) return null;
    throw err;
  }
}

export const passwordOf = (user: UserRow): PasswordHash => ({
  hash: user.passwordHash,
  salt: user.passwordSalt,
  algorithm: user.passwordAlgorithm,
  iterations: user.passwordIterations,
});

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
): Promise<Pick<UserRow, "id" | "username" | "readReceipts">[]> {
  const valid = usernames.filter(isUsername);
  if (valid.length === 0) return [];
  return db
    .select({ id: users.id, username: users.username, readReceipts: users.readReceipts })
    .from(users)
    .where(sql`lower(${users.username}) in (select value from json_each(${JSON.stringify(valid.map(usernameKey))}))`);
}

export function passwordUpdate(db: Database, id: number, password: PasswordHash) {
  return db
    .update(users)
    .set({
      passwordHash: password.hash,
      passwordSalt: password.salt,
      passwordAlgorithm: password.algorithm,
      passwordIterations: password.iterations,
    })
    .where(eq(users.id, id));
}

export async function updatePasswordHash(db: Database, id: number, password: PasswordHash): Promise<void> {
  await passwordUpdate(db, id, password);
}

export async function updateSettings(
  db: Database,
  id: number,
  settings: { readReceipts?: boolean },
): Promise<UserRow | undefined> {
  if (settings.readReceipts === undefined) return findUserById(db, id);
  return db.update(users).set({ readReceipts: settings.readReceipts }).where(eq(users.id, id)).returning().get();
}
