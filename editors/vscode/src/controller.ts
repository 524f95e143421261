// The extension's wiring: commands, the status bar, the preview documents and
// the reaction to the server's messages. It talks to the language client only
// through ClientLike, so tests drive it with a fake client and a stub `vscode`.

import * as os from "os";
import * as vscode from "vscode";
import {
  applyProgress,
  candidateLabel,
  candidateNotice,
  changeKind,
  formatProgress,
  PREFIX,
  ProgressState,
  ProgressValue,
  resultNotice,
  resultStatusText,
} from "./format";
import { decodeRef, diffSpec, DiffSide, evidenceUri, PREVIEW_SCHEME, PreviewUriParts, previewText } from "./preview";
import {
  ApplyResponse,
  CancelResponse,
  CONFIGURATION_SECTION,
  errorMessage,
  EXECUTE_COMMAND_REQUEST,
  executeCommandParams,
  parseResult,
  RESULT_NOTIFICATION,
  SERVER_COMMANDS,
  SolveArgs,
  SolveResponse,
  SolveResult,
} from "./protocol";
import { serverCommand, serverSettings } from "./settings";
import { buildSolveArgs, needsInput, validateIssueInput } from "./solveArgs";
import { CurrentCandidate, ResultState } from "./state";

/** The extension's own commands (the server's are `sweReasoner.*`; these must differ). */
export const COMMANDS = {
  solve: "swe-reasoner.solve",
  cancel: "swe-reasoner.cancel",
  accept: "swe-reasoner.accept",
  reject: "swe-reasoner.reject",
  nextCandidate: "swe-reasoner.nextCandidate",
  showCandidate: "swe-reasoner.showCandidate",
  showEvidence: "swe-reasoner.showEvidence",
  showLog: "swe-reasoner.showLog",
  restartServer: "swe-reasoner.restartServer",
} as const;

export const CONTEXT_SOLVING = "sweReasoner.solving";
export const CONTEXT_HAS_CANDIDATE = "sweReasoner.hasCandidate";

export const BUTTONS = {
  accept: "Accept",
  reject: "Reject",
  next: "Next candidate",
  files: "Other files…",
  evidence: "Evidence",
} as const;

export const DOCUMENT_SELECTOR = [
  { scheme: "file", language: "markdown" },
  { scheme: "file", language: "plaintext" },
  { scheme: "file", language: "python" },
];

export interface DisposableLike {
  dispose(): unknown;
}

/** What the controller needs of vscode-languageclient's LanguageClient. */
export interface ClientLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  sendRequest<R>(method: string, params: unknown): Promise<R>;
  sendNotification(method: string, params: unknown): Promise<void>;
  onNotification(method: string, handler: (params: unknown) => void): DisposableLike;
}

export interface ConfigurationItem {
  scopeUri?: string;
  section?: string;
}

/** Hooks the client factory turns into languageclient middleware. */
export interface ClientHooks {
  /** Every $/progress value of a work-done progress; `next` hands it to the languageclient's own progress UI. */
  workDoneProgress(token: string | number, value: ProgressValue, next: () => void): void;
  /** Runs when a server command registered by the languageclient (e.g. from the code action) is executed. */
  executeCommand(command: string, args: unknown[], next: (command: string, args: unknown[]) => unknown): unknown;
  /** Answers workspace/configuration; `next` is the languageclient's default answer. */
  configuration(items: ConfigurationItem[], next: (items: ConfigurationItem[]) => Promise<unknown[]>): Promise<unknown[]>;
  /** Sends workspace/didChangeConfiguration. */
  didChangeConfiguration(): Promise<void>;
}

export interface ClientSetup {
  id: string;
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  documentSelector: typeof DOCUMENT_SELECTOR;
  configurationSection: string;
  outputChannel: vscode.OutputChannel;
  hooks: ClientHooks;
}

export type ClientFactory = (setup: ClientSetup) => ClientLike;

interface RunningSolve {
  solveId?: string;
  token?: string | number;
  progress?: ProgressState;
  cancelling?: boolean;
}

function toUri(side: DiffSide | PreviewUriParts): vscode.Uri {
  if ("kind" in side) {
    return side.kind === "file" ? vscode.Uri.parse(side.uri) : vscode.Uri.from(side.uri);
  }
  return vscode.Uri.from(side);
}

export class Controller implements vscode.Disposable {
  private client: ClientLike | undefined;
  private clientSubscriptions: DisposableLike[] = [];
  private readonly state = new ResultState();
  private running: RunningSolve | undefined;
  /** solveIds whose result arrived (so a late solve response does not mark them running). */
  private readonly finished: string[] = [];
  private lastText: string | undefined;
  private readonly contexts = new Map<string, boolean>();
  private readonly shownProblems = new Set<string>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly disposables: vscode.Disposable[] = [];
  readonly output: vscode.OutputChannel;
  readonly statusItem: vscode.StatusBarItem;

  constructor(private readonly factory: ClientFactory) {
    this.output = vscode.window.createOutputChannel("swe-reasoner");
    this.statusItem = vscode.window.createStatusBarItem("swe-reasoner.status", vscode.StatusBarAlignment.Left, 0);
    this.statusItem.name = "swe-reasoner";
    this.disposables.push(this.output, this.statusItem);
  }

  /** Registers commands, the preview documents and the settings listener, then starts the server. */
  async activate(): Promise<void> {
    this.register(COMMANDS.solve, () => this.solveCommand());
    this.register(COMMANDS.cancel, () => this.cancel());
    this.register(COMMANDS.accept, () => this.accept());
    this.register(COMMANDS.reject, () => this.reject());
    this.register(COMMANDS.nextCandidate, () => this.nextCandidate());
    this.register(COMMANDS.showCandidate, () => this.showCandidate());
    this.register(COMMANDS.showEvidence, () => this.showEvidence());
    this.register(COMMANDS.showLog, () => this.output.show(true));
    this.register(COMMANDS.restartServer, () => this.restart());
    this.disposables.push(
      vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, {
        provideTextDocumentContent: (uri: vscode.Uri) => previewText(this.state.held, decodeRef(uri.query)),
      }),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.onTrustGranted()),
    );
    this.refreshStatus();
    await this.startClient();
  }

  /** Resolves once every notification flow started by a server message has ended (for tests). */
  async whenIdle(): Promise<void> {
    while (this.pending.size > 0) {
      await Promise.all([...this.pending]);
    }
  }

  async dispose(): Promise<void> {
    await this.stopClient();
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
  }

  // ------------------------------------------------------------- the client

  async startClient(): Promise<void> {
    const config = vscode.workspace.getConfiguration(CONFIGURATION_SECTION);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const cmd = serverCommand(config.get("python"), config.get("serverArgs"), {
      home: os.homedir(),
      workspaceFolder: folder,
    });
    this.warnOnce(cmd.problems);
    const commandLine = [cmd.command, ...cmd.args].join(" ");
    this.log(`starting the server: ${commandLine}`);
    const client = this.factory({
      id: "swe-reasoner",
      name: "swe-reasoner",
      command: cmd.command,
      args: cmd.args,
      cwd: folder,
      documentSelector: DOCUMENT_SELECTOR,
      configurationSection: CONFIGURATION_SECTION,
      outputChannel: this.output,
      hooks: this.hooks(),
    });
    this.client = client;
    this.clientSubscriptions.push(client.onNotification(RESULT_NOTIFICATION, (params) => this.onResult(params)));
    try {
      await client.start();
    } catch (error) {
      this.disposeClientSubscriptions();
      if (this.client === client) {
        this.client = undefined;
      }
      const message = errorMessage(error);
      this.log(`the server did not start: ${message}`);
      this.track(this.offerFixForStart(commandLine, message));
    }
  }

  private async offerFixForStart(commandLine: string, message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      `${PREFIX}: could not start the server (${commandLine}): ${message}. ` +
        "Set sweReasoner.python to a Python interpreter that has swe-reasoner installed.",
      "Open Settings",
      "Show Log",
    );
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "sweReasoner.python");
    } else if (choice === "Show Log") {
      this.output.show(true);
    }
  }

  private disposeClientSubscriptions(): void {
    for (const d of this.clientSubscriptions.splice(0)) {
      d.dispose();
    }
  }

  async stopClient(): Promise<void> {
    this.disposeClientSubscriptions();
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      try {
        await client.stop();
      } catch (error) {
        this.log(`stopping the server: ${errorMessage(error)}`);
      }
    }
  }

  async restart(): Promise<void> {
    await this.stopClient();
    // A new server process knows nothing of earlier solves.
    const held = this.state.solveId;
    this.state.clear();
    this.running = undefined;
    this.lastText = undefined;
    this.refreshStatus();
    if (held !== undefined) {
      await this.closePreviews(held);
    }
    await this.startClient();
  }

  private requireClient(): ClientLike | undefined {
    if (this.client === undefined) {
      this.track(this.offerRestart(`${PREFIX}: the server is not running. Check sweReasoner.python, then restart it.`, "error"));
    }
    return this.client;
  }

  private async offerRestart(text: string, level: "info" | "error"): Promise<void> {
    const choice =
      level === "error"
        ? await vscode.window.showErrorMessage(text, "Restart Server", "Show Log")
        : await vscode.window.showInformationMessage(text, "Restart Server");
    if (choice === "Restart Server") {
      await this.restart();
    } else if (choice === "Show Log") {
      this.output.show(true);
    }
  }

  private executeServerCommand<R>(client: ClientLike, command: string, argument: object | string): Promise<R> {
    return client.sendRequest<R>(EXECUTE_COMMAND_REQUEST, executeCommandParams(command, argument));
  }

  hooks(): ClientHooks {
    return {
      workDoneProgress: (token, value, next) => this.onProgress(token, value, next),
      executeCommand: (command, args, next) => {
        if (command === SERVER_COMMANDS.solve && args.length === 1) {
          // The code action's command: send its argument unchanged ourselves,
          // to learn the solveId and to show the server's error message as it is.
          return this.startSolve(args[0] as SolveArgs | string);
        }
        return next(command, args);
      },
      configuration: async (items, next) => {
        const answers: unknown[] = [];
        for (const item of items) {
          if (item.section === CONFIGURATION_SECTION) {
            answers.push(this.serverSettingsFor(item.scopeUri ?? undefined));
          } else {
            const [answer] = await next([item]);
            answers.push(answer);
          }
        }
        return answers;
      },
      didChangeConfiguration: async () => {
        const client = this.client;
        if (client !== undefined) {
          await client.sendNotification("workspace/didChangeConfiguration", {
            settings: { [CONFIGURATION_SECTION]: this.serverSettingsFor(undefined) },
          });
        }
      },
    };
  }

  /** The `sweReasoner` section as the server should see it: explicit, valid server keys only. */
  serverSettingsFor(scopeUri: string | undefined): Record<string, unknown> {
    const scope = scopeUri ? vscode.Uri.parse(scopeUri) : undefined;
    const config = vscode.workspace.getConfiguration(CONFIGURATION_SECTION, scope);
    const { settings, problems } = serverSettings((key) => config.inspect(key), { trusted: vscode.workspace.isTrusted });
    this.warnOnce(problems);
    return settings;
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration(CONFIGURATION_SECTION)) {
      return;
    }
    this.shownProblems.clear();
    if (e.affectsConfiguration(`${CONFIGURATION_SECTION}.python`) || e.affectsConfiguration(`${CONFIGURATION_SECTION}.serverArgs`)) {
      this.track(this.offerRestart(`${PREFIX}: the server's command line changed. Restart the server to use it.`, "info"));
    } else {
      this.serverSettingsFor(undefined);
    }
  }

  /** Workspace values of python/serverArgs were ignored until now: offer to use them. */
  private onTrustGranted(): void {
    const config = vscode.workspace.getConfiguration(CONFIGURATION_SECTION);
    const overridden = ["python", "serverArgs"].some((key) => {
      const inspected = config.inspect(key);
      return inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined;
    });
    if (overridden) {
      this.track(this.offerRestart(`${PREFIX}: the workspace is trusted now; restart the server to use its interpreter settings.`, "info"));
    }
  }

  private warnOnce(problems: string[]): void {
    for (const problem of problems) {
      if (!this.shownProblems.has(problem)) {
        this.shownProblems.add(problem);
        this.log(`settings: ${problem}`);
        void vscode.window.showWarningMessage(`${PREFIX}: ${problem}`);
      }
    }
  }

  // ---------------------------------------------------------------- solving

  async solveCommand(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const selectedText = editor !== undefined && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : undefined;
    let typedText: string | undefined;
    if (needsInput(selectedText)) {
      typedText = await vscode.window.showInputBox({
        title: "swe-reasoner: Solve issue",
        prompt: "The issue to solve: what is wrong and what should happen. (Or select an issue's text in an editor first.)",
        placeHolder: "mean() of an empty list raises ZeroDivisionError; it should raise ValueError",
        ignoreFocusOut: true,
        validateInput: validateIssueInput,
      });
    }
    const args = buildSolveArgs({ selectedText, typedText, documentUri: editor?.document.uri.toString() });
    if (args !== undefined) {
      await this.startSolve(args);
    }
  }

  /**
   * Sends sweReasoner.solve; the result comes later as sweReasoner/result.
   * `args` goes to the server as it is (the code action's argument included).
   */
  async startSolve(args: SolveArgs | string): Promise<SolveResponse | undefined> {
    const client = this.requireClient();
    if (client === undefined) {
      return undefined;
    }
    const alreadyRunning = this.running !== undefined;
    if (!alreadyRunning) {
      this.running = {};
      this.refreshStatus();
    }
    const issue = typeof args === "string" ? args : String(args?.issue ?? "");
    this.log(`solve: ${JSON.stringify(issue.length > 80 ? `${issue.slice(0, 80)}…` : issue)}`);
    try {
      const response = await this.executeServerCommand<SolveResponse>(client, SERVER_COMMANDS.solve, args);
      const solveId = response?.solveId;
      if (typeof solveId === "string" && !this.finished.includes(solveId)) {
        this.running = { ...(this.running ?? {}), solveId };
        this.log(`solve ${solveId} started`);
        this.refreshStatus();
      }
      return response;
    } catch (error) {
      const running = this.running;
      if (!alreadyRunning && running !== undefined && running.solveId === undefined && running.progress === undefined) {
        this.running = undefined;
        this.refreshStatus();
      }
      const message = errorMessage(error);
      this.log(`solve refused: ${message}`);
      void vscode.window.showErrorMessage(`${PREFIX}: ${message}`);
      return undefined;
    }
  }

  async cancel(): Promise<void> {
    const client = this.requireClient();
    if (client === undefined) {
      return;
    }
    const solveId = this.running?.solveId;
    const response = await this.executeServerCommand<CancelResponse>(client, SERVER_COMMANDS.cancel, solveId ? { solveId } : {});
    if (response?.cancelled === true) {
      if (this.running !== undefined) {
        this.running.cancelling = true;
      }
      this.log(`cancel requested${solveId ? ` for ${solveId}` : ""}`);
    } else {
      // Nothing runs on the server: whatever we believed is stale.
      this.running = undefined;
      void vscode.window.showInformationMessage(`${PREFIX}: no solve is running.`);
    }
    this.refreshStatus();
  }

  private onProgress(token: string | number, value: ProgressValue, next: () => void): void {
    if (value.kind === "end") {
      // Let the languageclient's progress part clean up; begin and report
      // are kept from it so that only one status bar entry shows the solve.
      next();
    }
    if (value.kind === "begin") {
      this.running = { ...(this.running ?? {}), token, progress: undefined };
    } else if (this.running === undefined || this.running.token !== token) {
      return;
    }
    this.running.progress = applyProgress(this.running.progress, value);
    this.refreshStatus();
  }

  // ---------------------------------------------------------------- results

  onResult(params: unknown): void {
    let result: SolveResult;
    try {
      result = parseResult(params);
    } catch (error) {
      const message = errorMessage(error);
      this.log(`bad result: ${message}`);
      void vscode.window.showErrorMessage(`${PREFIX}: the server sent a result this extension cannot read (${message}).`);
      return;
    }
    this.log(
      `result ${result.solveId}: ${result.status}${result.message ? ` — ${result.message}` : ""}; ` +
        `${result.candidates.length} candidate(s)${result.trajectory ? `; trajectory ${result.trajectory}` : ""}`,
    );
    this.finished.push(result.solveId);
    if (this.finished.length > 20) {
      this.finished.shift();
    }
    if (this.running !== undefined && (this.running.solveId === undefined || this.running.solveId === result.solveId)) {
      this.running = undefined;
    }
    const previous = this.state.held;
    const kept = this.state.set(result);
    if (kept && previous !== undefined && previous.solveId !== result.solveId) {
      this.track(this.discard(previous.solveId));
    }
    this.lastText = resultStatusText(result);
    this.refreshStatus();
    this.track(kept ? this.showCandidate() : this.announce(result));
  }

  private async announce(result: SolveResult): Promise<void> {
    const notice = resultNotice(result);
    const buttons: string[] = [];
    if (result.trajectory) {
      buttons.push("Open Trajectory");
    }
    if (result.status === "error") {
      buttons.push("Show Log");
    }
    const show =
      notice.level === "info"
        ? vscode.window.showInformationMessage
        : notice.level === "warning"
          ? vscode.window.showWarningMessage
          : vscode.window.showErrorMessage;
    const choice = await show(notice.text, ...buttons);
    if (choice === "Open Trajectory" && result.trajectory) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(result.trajectory));
      await vscode.window.showTextDocument(doc, { preview: true });
    } else if (choice === "Show Log") {
      this.output.show(true);
    }
  }

  /** Tells the server an earlier result is no longer needed. */
  private async discard(solveId: string): Promise<void> {
    await this.closePreviews(solveId);
    const client = this.client;
    if (client !== undefined) {
      try {
        await this.executeServerCommand(client, SERVER_COMMANDS.reject, { solveId });
      } catch (error) {
        this.log(`discarding ${solveId}: ${errorMessage(error)}`);
      }
    }
  }

  /** Opens the current candidate's diff, then offers Accept/Reject/Next/Evidence. */
  async showCandidate(): Promise<void> {
    const current = this.state.current;
    if (current === undefined) {
      void vscode.window.showInformationMessage(`${PREFIX}: there is no candidate to show.`);
      return;
    }
    await this.openDiff(current, 0);
    await this.offerActions(current.result.solveId, current.index);
  }

  private async openDiff(current: CurrentCandidate, file: number): Promise<void> {
    if (current.candidate.files.length === 0) {
      return;
    }
    const spec = diffSpec(current.result, current.index, file);
    await vscode.commands.executeCommand("vscode.diff", toUri(spec.left), toUri(spec.right), spec.title, {
      preview: true,
    });
  }

  private async offerActions(solveId: string, index: number): Promise<void> {
    for (;;) {
      const current = this.state.current;
      if (current === undefined || !this.state.isCurrent(solveId, index)) {
        return;
      }
      const buttons: string[] = [BUTTONS.accept, BUTTONS.reject];
      if (current.count > 1) {
        buttons.push(BUTTONS.next);
      }
      if (current.candidate.files.length > 1) {
        buttons.push(BUTTONS.files);
      }
      buttons.push(BUTTONS.evidence);
      const choice = await vscode.window.showInformationMessage(candidateNotice(current.result, current.index), ...buttons);
      if (!this.state.isCurrent(solveId, index)) {
        return; // another candidate or result is shown now; this notification is stale
      }
      switch (choice) {
        case BUTTONS.accept:
          await this.accept();
          return;
        case BUTTONS.reject:
          await this.reject();
          return;
        case BUTTONS.next:
          await this.nextCandidate();
          return;
        case BUTTONS.evidence:
          await this.showEvidence();
          continue;
        case BUTTONS.files:
          await this.pickFile(current);
          continue;
        default:
          return; // dismissed: the commands and the status bar still reach the candidate
      }
    }
  }

  private async pickFile(current: CurrentCandidate): Promise<void> {
    const items = current.candidate.files.map((file, i) => ({
      label: file.path,
      description: changeKind(file),
      file: i,
    }));
    const picked = await vscode.window.showQuickPick(items, { title: `${PREFIX}: files of ${candidateLabel(current.index, current.count)}` });
    if (picked !== undefined && this.state.isCurrent(current.result.solveId, current.index)) {
      await this.openDiff(current, picked.file);
    }
  }

  async nextCandidate(): Promise<void> {
    const current = this.state.current;
    if (current === undefined) {
      void vscode.window.showInformationMessage(`${PREFIX}: there is no candidate to show.`);
      return;
    }
    if (current.count === 1) {
      void vscode.window.showInformationMessage(`${PREFIX}: this solve has only one candidate.`);
      return;
    }
    this.state.next();
    this.refreshStatus();
    await this.showCandidate();
  }

  async showEvidence(): Promise<void> {
    const current = this.state.current;
    if (current === undefined) {
      void vscode.window.showInformationMessage(`${PREFIX}: there is no candidate to explain.`);
      return;
    }
    const doc = await vscode.workspace.openTextDocument(toUri(evidenceUri(current.result.solveId, current.index)));
    await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
  }

  async accept(): Promise<void> {
    const current = this.state.current;
    if (current === undefined) {
      void vscode.window.showInformationMessage(`${PREFIX}: there is no candidate to accept.`);
      return;
    }
    const client = this.requireClient();
    if (client === undefined) {
      return;
    }
    const { solveId } = current.result;
    const label = `candidate ${current.index + 1}`;
    let response: ApplyResponse;
    try {
      response = await this.executeServerCommand<ApplyResponse>(client, SERVER_COMMANDS.apply, {
        solveId,
        candidate: current.index,
      });
    } catch (error) {
      void vscode.window.showErrorMessage(`${PREFIX}: could not apply ${label}: ${errorMessage(error)}`);
      return;
    }
    if (response?.applied !== true) {
      const reason = response?.reason || "the server gave no reason";
      this.log(`apply ${solveId} #${current.index} refused: ${reason}`);
      void vscode.window.showErrorMessage(`${PREFIX}: ${label} was not applied: ${reason}`);
      return;
    }
    this.log(`applied ${solveId} #${current.index}`);
    if (this.state.isCurrent(solveId, current.index)) {
      this.state.clear();
    }
    this.lastText = `${PREFIX}: applied ${label}`;
    this.refreshStatus();
    await this.closePreviews(solveId);
    const files = current.candidate.files.map((f) => f.path).join(", ");
    void vscode.window.showInformationMessage(`${PREFIX}: applied ${label} (${files}). Review the changes and save.`);
  }

  async reject(): Promise<void> {
    const held = this.state.held;
    if (held === undefined) {
      void vscode.window.showInformationMessage(`${PREFIX}: there is no result to reject.`);
      return;
    }
    this.state.clear();
    this.lastText = `${PREFIX}: rejected`;
    this.refreshStatus();
    await this.closePreviews(held.solveId);
    const client = this.client;
    if (client !== undefined) {
      try {
        await this.executeServerCommand(client, SERVER_COMMANDS.reject, { solveId: held.solveId });
      } catch (error) {
        this.log(`reject ${held.solveId}: ${errorMessage(error)}`);
      }
    }
  }

  /** Closes the diff and evidence tabs of a solve. */
  private async closePreviews(solveId: string): Promise<void> {
    const ours = (uri: vscode.Uri): boolean => uri.scheme === PREVIEW_SCHEME && decodeRef(uri.query)?.solveId === solveId;
    const tabs: vscode.Tab[] = [];
    for (const group of vscode.window.tabGroups.all) {
      for (const tab of group.tabs) {
        const input = tab.input;
        if (input instanceof vscode.TabInputTextDiff && (ours(input.modified) || ours(input.original))) {
          tabs.push(tab);
        } else if (input instanceof vscode.TabInputText && ours(input.uri)) {
          tabs.push(tab);
        }
      }
    }
    if (tabs.length > 0) {
      await vscode.window.tabGroups.close(tabs, true);
    }
  }

  // ------------------------------------------------------------ status bar

  private refreshStatus(): void {
    const item = this.statusItem;
    if (this.running !== undefined) {
      const text = this.running.cancelling ? `${PREFIX}: cancelling…` : formatProgress(this.running.progress);
      item.text = `$(sync~spin) ${text}`;
      item.tooltip = `${text}\nClick to cancel the solve.`;
      item.command = COMMANDS.cancel;
      item.show();
    } else if (this.state.current !== undefined) {
      // A result is waiting for review (even if a later solve failed).
      item.text = `$(diff) ${resultStatusText(this.state.current.result)}`;
      item.tooltip = "Click to review the candidate.";
      item.command = COMMANDS.showCandidate;
      item.show();
    } else if (this.lastText !== undefined) {
      item.text = this.lastText;
      item.tooltip = "Click to show the swe-reasoner log.";
      item.command = COMMANDS.showLog;
      item.show();
    } else {
      item.hide();
    }
    this.setContext(CONTEXT_SOLVING, this.running !== undefined);
    this.setContext(CONTEXT_HAS_CANDIDATE, this.state.current !== undefined);
  }

  private setContext(key: string, value: boolean): void {
    if (this.contexts.get(key) !== value) {
      this.contexts.set(key, value);
      void vscode.commands.executeCommand("setContext", key, value);
    }
  }

  // -------------------------------------------------------------- plumbing

  private register(id: string, handler: () => unknown): void {
    this.disposables.push(
      vscode.commands.registerCommand(id, async () => {
        try {
          return await handler();
        } catch (error) {
          const message = errorMessage(error);
          this.log(`${id}: ${message}`);
          void vscode.window.showErrorMessage(`${PREFIX}: ${message}`);
          return undefined;
        }
      }),
    );
  }

  private track(promise: Promise<unknown>): void {
    const tracked: Promise<unknown> = Promise.resolve(promise)
      .catch((error) => this.log(`error: ${errorMessage(error)}`))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  log(line: string): void {
    this.output.appendLine(`[swe-reasoner] ${line}`);
  }
}

let active: Controller | undefined;

/** activate() with an injectable client factory (the real one is in client.ts). */
export async function activateWith(context: { subscriptions: { dispose(): unknown }[] }, factory: ClientFactory): Promise<Controller> {
  const controller = new Controller(factory);
  active = controller;
  context.subscriptions.push(controller);
  await controller.activate();
  return controller;
}

export async function deactivateController(): Promise<void> {
  const controller = active;
  active = undefined;
  if (controller !== undefined) {
    await controller.dispose();
  }
}
