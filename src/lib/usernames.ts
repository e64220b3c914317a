/** The username rule: 3 to 32 of `[a-zA-Z0-9_.-]`. */
export const USERNAME_PATTERN = /^[a-zA-Z0-9_.-]{3,32}$/;

/** Whether `name` follows the username rule; no other name can match a user. */
export const isUsername = (name: string): boolean => USERNAME_PATTERN.test(name);

/**
 * The case-insensitive key of a username: ASCII letters only, like SQLite's `lower()` behind the
 * unique index. `toLowerCase()` would fold Unicode too ("\u212A", the Kelvin sign, becomes "k").
 */
export const usernameKey = (name: string): string =>
  name.replace(/[A-Z]/g, (letter) => String.fromCharCode(letter.charCodeAt(0) + 32));
