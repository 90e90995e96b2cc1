// The bgproxy command line. Each subcommand lives in its own file; this one wires them
// into commander and turns every failure into one line and an exit code.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerApps } from './apps.js';
import { registerCerts } from './certs.js';
import { registerFleet } from './fleet.js';
import { registerInit } from './init.js';
import { registerOps } from './ops.js';
import { printError } from './output.js';
import { registerRelease } from './release.js';
import { installRootOption } from './root.js';
import { registerServe } from './serve.js';
import { registerTraffic } from './traffic.js';
import { registerVerify } from './verify.js';

export function buildProgram(): Command {
  const program = new Command('bgproxy')
    .description('Zero-downtime blue/green releases on one server')
    .version(VERSION, '-V, --version')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`bgproxy: ${str.replace(/^error: /, '').trim()}\n`) });
  installRootOption(program);
  registerInit(program);
  registerServe(program);
  registerOps(program);
  registerRelease(program);
  registerTraffic(program);
  registerApps(program);
  registerCerts(program);
  registerVerify(program);
  registerFleet(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0;
      return 2;
    }
    return printError(err);
  }
}

const code = await main(process.argv);
process.exitCode = code;
