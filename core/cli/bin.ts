/** The process entry point (bin/switchyard.js imports the compiled form of this file). */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Servers and watches are closed by now; make sure nothing keeps the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`switchyard: ${String(e)}\n`);
    process.exit(1);
  },
);
