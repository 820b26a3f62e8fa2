import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// Users see diskwright's steps, not the tools it runs inside (issue 14): the literal text of every
// error message and hint in src/ must not name an internal tool. What a tool printed may follow
// after a colon — that is interpolated (`${stderr}`), not literal, so it is not scanned.
const INTERNAL_TOOL = /\b(debugfs|mke2fs|mkfs\.ext[234]|tune2fs|resize2fs|e2fsck|dumpe2fs|libext2fs|e2label|mkswap)\b/;

// Literal mentions that are meant: a hint naming a host tool the user may run themselves (the
// host's e2fsprogs can edit an image file without root), never the tool diskwright ran.
const ALLOWED: readonly RegExp[] = [/\bhost (e2fsck|debugfs)\b/g, /`tune2fs -O [^`]*`/g];

const SRC = join(import.meta.dirname, '../../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The literal text of a message expression: string pieces of literals, templates and `+` chains. */
function literalText(node: ts.Node): string {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) return [node.head.text, ...node.templateSpans.map((span) => `${spanText(span)}${span.literal.text}`)].join('');
  if (ts.isBinaryExpression(node)) {
    const op = node.operatorToken.kind;
    if (op === ts.SyntaxKind.PlusToken) return literalText(node.left) + literalText(node.right);
    // `stderr || \`tool exit code N\``: the fallback is literal text a user may see.
    if (op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.BarBarToken) return `${literalText(node.left)} | ${literalText(node.right)}`;
  }
  if (ts.isConditionalExpression(node)) return `${literalText(node.whenTrue)} | ${literalText(node.whenFalse)}`;
  if (ts.isParenthesizedExpression(node)) return literalText(node.expression);
  return '…';
}

/**
 * A `${…}` in a message: its literal fallbacks, and in the WebAssembly layers (src/e2fs, src/ext) a
 * bare tool name (`${job.tool} aborted`) counts as naming the tool; `${tool}.wasm` is a file name.
 */
function spanText(span: ts.TemplateSpan): string {
  const expression = span.expression.getText();
  if (/(^|\.)tool$/.test(expression) && inWasmLayer && !span.literal.text.startsWith('.wasm')) return '<e2fsck>';
  return literalText(span.expression);
}
let inWasmLayer = false;

interface Message {
  readonly where: string;
  readonly text: string;
}

/** Every `new …Error(…)` message argument and every `hint:` value in `file`. */
function messagesOf(file: string): Message[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  inWasmLayer = /^(e2fs|ext)\//.test(relative(SRC, file));
  const found: Message[] = [];
  const where = (node: ts.Node): string => `${relative(SRC, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && /Error$/.test(node.expression.getText(source))) {
      for (const arg of node.arguments ?? []) {
        if (ts.isObjectLiteralExpression(arg)) continue;
        found.push({ where: where(arg), text: literalText(arg) });
      }
    }
    if (ts.isPropertyAssignment(node) && node.name.getText(source) === 'hint') found.push({ where: where(node), text: literalText(node.initializer) });
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('user-facing messages', () => {
  const all = sources(SRC).flatMap(messagesOf);

  it('are found by the scan (it reads every error and hint in src/)', () => {
    expect(all.length).toBeGreaterThan(300);
    expect(all.some((m) => m.text.includes('interrupted'))).toBe(true);
  });

  it('never name the internal tool that ran (debugfs, mke2fs, e2fsck, …), only diskwright\'s step', () => {
    const naming = all.filter((m) => INTERNAL_TOOL.test(ALLOWED.reduce((text, allowed) => text.replace(allowed, ''), m.text)));
    expect(naming.map((m) => `${m.where}: ${m.text}`)).toEqual([]);
  });
});
