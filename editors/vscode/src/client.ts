// The real language client: vscode-languageclient over stdio, with the
// controller's hooks as middleware.

import {
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";
import { ClientLike, ClientSetup } from "./controller";

export function createLanguageClient(setup: ClientSetup): ClientLike {
  const serverOptions: ServerOptions = {
    command: setup.command,
    args: setup.args,
    transport: TransportKind.stdio,
    options: setup.cwd !== undefined ? { cwd: setup.cwd } : undefined,
  };
  const { hooks } = setup;
  const clientOptions: LanguageClientOptions = {
    documentSelector: setup.documentSelector,
    outputChannel: setup.outputChannel,
    // Errors of our own requests are shown by the controller with the server's message.
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    synchronize: { configurationSection: setup.configurationSection },
    middleware: {
      handleWorkDoneProgress: (token, params, next) => hooks.workDoneProgress(token, params, () => next(token, params)),
      executeCommand: (command, args, next) => hooks.executeCommand(command, args, (c, a) => next(c, a)),
      workspace: {
        configuration: (params, token, next) =>
          hooks.configuration(params.items, async (items) => {
            const answer = await next({ items }, token);
            if (!Array.isArray(answer)) {
              throw answer instanceof Error ? answer : new Error("workspace/configuration failed");
            }
            return answer;
          }),
        didChangeConfiguration: () => hooks.didChangeConfiguration(),
      },
    },
  };
  return new LanguageClient(setup.id, setup.name, serverOptions, clientOptions);
}
