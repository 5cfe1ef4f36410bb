/**
 * Passwords out of messages: every `scheme://user:password@` (or `scheme://:password@`) in a text becomes
 * `scheme://user:***@` (a template such as `redis://[user:password@]host` is left alone). Used on every line lpc prints about a queue (URLs, errors from Redis clients, job reasons).
 * No imports, so that the CLI's top-level error printer can use it too.
 */
export function redact(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/[\]]*:)[^\s@/[\]]*@/gi, '$1***@');
}

/** The environment variable that may hold the queue's URL instead of `--queue` (keeps the password out of `ps`). */
export const QUEUE_ENV = 'LPC_QUEUE';

/** `env` without the queue URL: what forked cell processes get. */
export function withoutQueue(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { [QUEUE_ENV]: _q, ...rest } = env;
  return rest;
}
