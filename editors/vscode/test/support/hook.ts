// Makes `require("vscode")` load the stub. Import this before anything that
// imports "vscode" (tsc keeps side-effect imports in order).

import Module = require("module");

const stubPath = require.resolve("./vscode-stub");
const moduleWithResolver = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
};
const original = moduleWithResolver._resolveFilename;
moduleWithResolver._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
  if (request === "vscode") {
    return stubPath;
  }
  return original.call(this, request, ...rest);
};
