// Entry point: VS Code calls activate() and deactivate().

import type * as vscode from "vscode";
import { createLanguageClient } from "./client";
import { activateWith, deactivateController } from "./controller";

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  await activateWith(context, createLanguageClient);
}

export function deactivate(): Promise<void> {
  return deactivateController();
}
