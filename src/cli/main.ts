// The bgproxy command line: runs the command tree of program.ts and turns every failure
// into one line and an exit code.
import { CommanderError } from 'commander';
import { printError } from './output.js';
import { buildProgram } from './program.js';

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
