// A stand-in for the `vscode` module, enough for the extension's controller
// (and for loading vscode-languageclient). It records what the extension asks
// of VS Code and lets a test script the user's answers.


export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}

  static from(c: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(c.scheme, c.authority ?? "", c.path ?? "", c.query ?? "", c.fragment ?? "");
  }

  static parse(value: string): Uri {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (m === null) {
      throw new Error(`stub Uri.parse: not a URI: ${value}`);
    }
    const dec = (s: string | undefined) => decodeURIComponent(s ?? "");
    return new Uri(m[1], dec(m[2]), dec(m[3]), dec(m[4]), dec(m[5]));
  }

  static file(fsPath: string): Uri {
    return new Uri("file", "", fsPath.replace(/\\/g, "/"), "", "");
  }

  get fsPath(): string {
    return this.path;
  }

  with(change: { scheme?: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(
      change.scheme ?? this.scheme,
      change.authority ?? this.authority,
      change.path ?? this.path,
      change.query ?? this.query,
      change.fragment ?? this.fragment,
    );
  }

  toString(): string {
    const enc = (s: string) => encodeURI(s).replace(/[?#]/g, (c) => encodeURIComponent(c));
    const authority = this.authority !== "" || this.scheme === "file" ? `//${this.authority}` : "";
    const query = this.query !== "" ? `?${encodeURIComponent(this.query)}` : "";
    const fragment = this.fragment !== "" ? `#${encodeURIComponent(this.fragment)}` : "";
    return `${this.scheme}:${authority}${enc(this.path)}${query}${fragment}`;
  }

  toJSON(): unknown {
    return { scheme: this.scheme, authority: this.authority, path: this.path, query: this.query, fragment: this.fragment };
  }
}

export class Disposable {
  constructor(private readonly fn: () => void = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners: ((e: T) => void)[] = [];
  event = (listener: (e: T) => void): Disposable => {
    this.listeners.push(listener);
    return new Disposable(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) {
      l(e);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class CancellationError extends Error {}

// Base classes vscode-languageclient extends when its modules load.
export class SymbolInformation {}
export class DocumentLink {}
export class InlayHint {}
export class Diagnostic {}
export class CallHierarchyItem {}
export class CodeLens {}
export class CompletionItem {}
export class TypeHierarchyItem {}
export class CodeAction {}
export const CodeActionKind = {
  Empty: { value: "" },
  QuickFix: { value: "quickfix" },
  Refactor: { value: "refactor" },
  RefactorExtract: { value: "refactor.extract" },
  RefactorInline: { value: "refactor.inline" },
  RefactorMove: { value: "refactor.move" },
  RefactorRewrite: { value: "refactor.rewrite" },
  Source: { value: "source" },
  SourceOrganizeImports: { value: "source.organizeImports" },
  SourceFixAll: { value: "source.fixAll" },
  Notebook: { value: "notebook" },
};

export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
  Two = 2,
}

export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}

export class TabInputText {
  constructor(readonly uri: Uri) {}
}

export class TabInputTextDiff {
  constructor(
    readonly original: Uri,
    readonly modified: Uri,
  ) {}
}

// ------------------------------------------------------------------ records

export type Level = "info" | "warning" | "error";

export interface MessageCall {
  level: Level;
  text: string;
  items: string[];
}

export interface ExecutedCommand {
  command: string;
  args: unknown[];
}

export interface FakeTab {
  label: string;
  input: unknown;
}

export interface FakeOutputChannel {
  name: string;
  lines: string[];
  shown: number;
  appendLine(line: string): void;
  append(text: string): void;
  replace(text: string): void;
  clear(): void;
  show(preserveFocus?: boolean): void;
  hide(): void;
  dispose(): void;
}

export interface FakeStatusBarItem {
  id: string;
  name?: string;
  text: string;
  tooltip?: string;
  command?: string;
  visible: boolean;
  show(): void;
  hide(): void;
  dispose(): void;
}

export interface FakeDocument {
  uri: Uri;
  languageId: string;
  text: string;
  getText(range?: { start: number; end: number }): string;
}

export interface FakeSelection {
  start: number;
  end: number;
  isEmpty: boolean;
}

export interface ConfigChange {
  affectsConfiguration(section: string): boolean;
}

type Responder<A, R> = (arg: A) => R | undefined | Promise<R | undefined>;

/** Everything the extension did, and the scripted user. Reset with reset(). */
export const recorded = {
  messages: [] as MessageCall[],
  executed: [] as ExecutedCommand[],
  inputBoxes: [] as any[],
  quickPicks: [] as { items: any[]; options: any }[],
  shownDocuments: [] as { document: FakeDocument; options: any }[],
  closedTabs: [] as FakeTab[],
  outputChannels: [] as FakeOutputChannel[],
  statusBarItems: [] as FakeStatusBarItem[],
};

export const user = {
  /** Answers a message: a button's title, or undefined for "dismissed". */
  onMessage: (() => undefined) as Responder<MessageCall, string>,
  onInputBox: (() => undefined) as Responder<any, string>,
  onQuickPick: (() => undefined) as Responder<{ items: any[]; options: any }, any>,
};

export const registeredCommands = new Map<string, (...args: any[]) => any>();
export const contentProviders = new Map<string, { provideTextDocumentContent(uri: Uri): string | undefined }>();
const configListeners: ((e: ConfigChange) => void)[] = [];
const trustListeners: (() => void)[] = [];

/** Settings by full key ("sweReasoner.budget") and by level. */
export const settings = {
  defaults: new Map<string, unknown>(),
  global: new Map<string, unknown>(),
  workspace: new Map<string, unknown>(),
  folder: new Map<string, unknown>(),
};

export function reset(): void {
  recorded.messages.length = 0;
  recorded.executed.length = 0;
  recorded.inputBoxes.length = 0;
  recorded.quickPicks.length = 0;
  recorded.shownDocuments.length = 0;
  recorded.closedTabs.length = 0;
  recorded.outputChannels.length = 0;
  recorded.statusBarItems.length = 0;
  user.onMessage = () => undefined;
  user.onInputBox = () => undefined;
  user.onQuickPick = () => undefined;
  registeredCommands.clear();
  contentProviders.clear();
  configListeners.length = 0;
  trustListeners.length = 0;
  workspace.isTrusted = true;
  settings.defaults.clear();
  settings.global.clear();
  settings.workspace.clear();
  settings.folder.clear();
  tabGroupList.length = 0;
  tabGroupList.push({ tabs: [] });
  window.activeTextEditor = undefined;
  workspace.workspaceFolders = [{ uri: Uri.file("/repo"), name: "repo", index: 0 }];
}

/** Fires onDidChangeConfiguration as if the given full keys changed. */
export function changeSettings(keys: string[]): void {
  const event: ConfigChange = {
    affectsConfiguration: (section: string) => keys.some((k) => k === section || k.startsWith(`${section}.`)),
  };
  for (const l of [...configListeners]) {
    l(event);
  }
}

/** Grants workspace trust, as the user would in VS Code. */
export function grantTrust(): void {
  workspace.isTrusted = true;
  for (const l of [...trustListeners]) {
    l();
  }
}

export function makeDocument(uri: Uri, text: string, languageId = "plaintext"): FakeDocument {
  return {
    uri,
    languageId,
    text,
    getText: (range?: { start: number; end: number }) => (range ? text.slice(range.start, range.end) : text),
  };
}

/** Makes `window.activeTextEditor` an editor on `text` with [start, end) selected. */
export function openEditor(uri: Uri, text: string, start = 0, end = 0, languageId = "markdown"): void {
  const document = makeDocument(uri, text, languageId);
  const selection: FakeSelection = { start, end, isEmpty: start === end };
  window.activeTextEditor = { document, selection } as any;
}

// -------------------------------------------------------------- namespaces

const tabGroupList: { tabs: FakeTab[] }[] = [{ tabs: [] }];

async function message(level: Level, text: string, items: unknown[]): Promise<string | undefined> {
  const strings = items.filter((i): i is string => typeof i === "string");
  const call: MessageCall = { level, text, items: strings };
  recorded.messages.push(call);
  return user.onMessage(call);
}

export const window = {
  activeTextEditor: undefined as any,
  createOutputChannel(name: string): FakeOutputChannel {
    const channel: FakeOutputChannel = {
      name,
      lines: [],
      shown: 0,
      appendLine(line: string) {
        this.lines.push(line);
      },
      append(text: string) {
        this.lines.push(text);
      },
      replace(text: string) {
        this.lines = [text];
      },
      clear() {
        this.lines = [];
      },
      show() {
        this.shown += 1;
      },
      hide() {},
      dispose() {},
    };
    recorded.outputChannels.push(channel);
    return channel;
  },
  createStatusBarItem(id: string): FakeStatusBarItem {
    const item: FakeStatusBarItem = {
      id,
      text: "",
      visible: false,
      show() {
        this.visible = true;
      },
      hide() {
        this.visible = false;
      },
      dispose() {
        this.visible = false;
      },
    };
    recorded.statusBarItems.push(item);
    return item;
  },
  showInformationMessage: (text: string, ...items: unknown[]) => message("info", text, items),
  showWarningMessage: (text: string, ...items: unknown[]) => message("warning", text, items),
  showErrorMessage: (text: string, ...items: unknown[]) => message("error", text, items),
  async showInputBox(options: any): Promise<string | undefined> {
    recorded.inputBoxes.push(options);
    return user.onInputBox(options);
  },
  async showQuickPick(items: any[], options: any): Promise<any> {
    const call = { items, options };
    recorded.quickPicks.push(call);
    return user.onQuickPick(call);
  },
  async showTextDocument(document: FakeDocument, options: any): Promise<unknown> {
    recorded.shownDocuments.push({ document, options });
    tabGroupList[0].tabs.push({ label: document.uri.path, input: new TabInputText(document.uri) });
    return { document };
  },
  async withProgress(_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>): Promise<unknown> {
    return task({ report() {} }, { isCancellationRequested: false, onCancellationRequested: () => new Disposable() });
  },
  tabGroups: {
    get all() {
      return tabGroupList;
    },
    async close(tabs: FakeTab | FakeTab[]): Promise<boolean> {
      const list = Array.isArray(tabs) ? tabs : [tabs];
      for (const tab of list) {
        for (const group of tabGroupList) {
          const i = group.tabs.indexOf(tab);
          if (i >= 0) {
            group.tabs.splice(i, 1);
            recorded.closedTabs.push(tab);
          }
        }
      }
      return true;
    },
  },
};

export const commands = {
  registerCommand(id: string, handler: (...args: any[]) => any): Disposable {
    if (registeredCommands.has(id)) {
      throw new Error(`command '${id}' already exists`);
    }
    registeredCommands.set(id, handler);
    return new Disposable(() => registeredCommands.delete(id));
  },
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    recorded.executed.push({ command, args });
    const handler = registeredCommands.get(command);
    if (handler !== undefined) {
      return handler(...args);
    }
    if (command === "vscode.diff") {
      const [left, right, title] = args as [Uri, Uri, string];
      tabGroupList[0].tabs.push({ label: title, input: new TabInputTextDiff(left, right) });
    }
    return undefined;
  },
};

function configurationFor(section: string | undefined) {
  const full = (key: string) => (section ? `${section}.${key}` : key);
  return {
    get(key: string, fallback?: unknown): unknown {
      const k = full(key);
      for (const level of [settings.folder, settings.workspace, settings.global, settings.defaults]) {
        if (level.has(k)) {
          return level.get(k);
        }
      }
      return fallback;
    },
    has(key: string): boolean {
      const k = full(key);
      return [settings.folder, settings.workspace, settings.global, settings.defaults].some((l) => l.has(k));
    },
    inspect(key: string) {
      const k = full(key);
      return {
        key: k,
        defaultValue: settings.defaults.get(k),
        globalValue: settings.global.get(k),
        workspaceValue: settings.workspace.get(k),
        workspaceFolderValue: settings.folder.get(k),
      };
    },
    async update(): Promise<void> {},
  };
}

export const workspace = {
  workspaceFolders: [{ uri: Uri.file("/repo"), name: "repo", index: 0 }] as { uri: Uri; name: string; index: number }[] | undefined,
  getConfiguration(section?: string, _scope?: unknown) {
    return configurationFor(section);
  },
  onDidChangeConfiguration(listener: (e: ConfigChange) => void): Disposable {
    configListeners.push(listener);
    return new Disposable(() => {
      const i = configListeners.indexOf(listener);
      if (i >= 0) {
        configListeners.splice(i, 1);
      }
    });
  },
  registerTextDocumentContentProvider(scheme: string, provider: { provideTextDocumentContent(uri: Uri): string | undefined }): Disposable {
    contentProviders.set(scheme, provider);
    return new Disposable(() => contentProviders.delete(scheme));
  },
  async openTextDocument(target: Uri | { content?: string; language?: string }): Promise<FakeDocument> {
    if (target instanceof Uri) {
      const provider = contentProviders.get(target.scheme);
      if (provider === undefined) {
        throw new Error(`stub openTextDocument: no provider for ${target.toString()}`);
      }
      const language = target.path.endsWith(".md") ? "markdown" : "plaintext";
      return makeDocument(target, provider.provideTextDocumentContent(target) ?? "", language);
    }
    return makeDocument(Uri.from({ scheme: "untitled", path: "Untitled-1" }), target.content ?? "", target.language ?? "plaintext");
  },
  isTrusted: true,
  onDidGrantWorkspaceTrust(listener: () => void): Disposable {
    trustListeners.push(listener);
    return new Disposable(() => {
      const i = trustListeners.indexOf(listener);
      if (i >= 0) {
        trustListeners.splice(i, 1);
      }
    });
  },
  onDidOpenTextDocument: () => new Disposable(),
  onDidCloseTextDocument: () => new Disposable(),
  onDidChangeTextDocument: () => new Disposable(),
  onDidSaveTextDocument: () => new Disposable(),
  onWillSaveTextDocument: () => new Disposable(),
  onDidChangeWorkspaceFolders: () => new Disposable(),
  textDocuments: [] as FakeDocument[],
};

export const languages = {
  match: () => 0,
};

export const env = {
  appName: "stub",
  language: "en",
};

export const extensions = {
  getExtension: () => undefined,
};

export const version = "1.82.0";
