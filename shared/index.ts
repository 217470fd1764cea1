// The protocol core, used unchanged by the list server (Node) and the extension
// (browser). One concept per module; this file only re-exports.

export * from './errors.ts';
export * from './bytes.ts';
export * from './limits.ts';
export * from './keys/policy.ts';
export * from './keys/generate.ts';
export * from './mime/encode.ts';
export * from './mime/inner.ts';
export * from './mime/pgpmime.ts';
export * from './mime/payload.ts';
export * from './mime/parse-inner.ts';
export * from './post/compose.ts';
export * from './post/decrypt.ts';
export * from './post/open.ts';
export * from './post/verify.ts';
export * from './post/detach.ts';
export * from './post/signed-facts.ts';
export * from './post/display.ts';
export * from './envelope/seal.ts';
export * from './envelope/recipient.ts';
export * from './envelope/copy.ts';
export * from './reader/read.ts';
export * from './api/types.ts';
export * from './api/statements.ts';
export * from './api/moderation.ts';
