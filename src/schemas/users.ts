import { z } from "zod";
import { publicKey, username } from "./common";

export const publicKeyBody = z.object({ publicKey });
export const usernameParam = z.object({ username });
