#!/usr/bin/env node
// The `letterlock` executable (package.json "bin"; `npx letterlock`, or a global
// install): loads tsx's loader in this process and runs server/cli/main.ts, so
// the TypeScript sources run as they are, without a build step. tsx is therefore
// a runtime dependency.

import { register } from 'tsx/esm/api';

register();
const { run } = await import('./main.ts');
run(process.argv.slice(2));
