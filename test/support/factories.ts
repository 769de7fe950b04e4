import type { PrismaClient } from '@prisma/client';
import { hashPassword } from '../../src/modules/users/password.js';

let sequence = 0;
const next = () => {
  sequence += 1;
  return sequence;
};

export interface BuiltUser {
  id: number;
  username: string;
  role: 'admin' | 'user';
  password: string;
}

/** A user whose password is `${username}-password` unless given. */
export async function buildUser(
  db: PrismaClient,
  overrides: { username?: string; role?: 'admin' | 'user'; password?: string; isDisabled?: boolean } = {},
): Promise<BuiltUser> {
  const username = overrides.username ?? `user${next()}`;
  const password = overrides.password ?? `${username}-password`;
  const user = await db.user.create({
    data: {
      username,
      passwordHash: await hashPassword(password),
      role: overrides.role ?? 'user',
      isDisabled: overrides.isDisabled ?? false,
    },
  });
  return { id: user.id, username, role: user.role, password };
}
