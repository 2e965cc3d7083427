/**
 * The purity check of `src/core`, on the syntax tree of each module (TypeScript's parser),
 * not on its text:
 *
 * - imports come only from `effect` and from the core itself (`./Name.js`); a value import
 *   from `effect` must name a module known to be pure data or functions (`PURE_EFFECT`);
 *   the ambient ones (`Random`, `Clock`, `DateTime`, `Effect`, `Schedule`, ...) are refused
 *   with the reason, and so is an unknown one until it is added to `PURE_EFFECT`;
 *   `import type` is free (types run nothing);
 * - no global that reads the clock, randomness or the outside world (`Date`, `Math.random`,
 *   `performance`, `process`, `setTimeout`, `require`, dynamic `import()`, ...).
 */
import ts from "typescript"

/** Modules of `effect` that hold data and pure functions only (with the functions `effect` exports). */
export const PURE_EFFECT: ReadonlySet<string> = new Set([
  "Array",
  "BigDecimal",
  "BigInt",
  "Boolean",
  "Brand",
  "Chunk",
  "Data",
  "Duration",
  "Either",
  "Equal",
  "Equivalence",
  "Function",
  "Hash",
  "HashMap",
  "HashSet",
  "Iterable",
  "List",
  "Match",
  "Number",
  "Option",
  "Order",
  "ParseResult",
  "Predicate",
  "Record",
  "RedBlackTree",
  "Schema",
  "SortedMap",
  "SortedSet",
  "String",
  "Struct",
  "Symbol",
  "Tuple",
  "absurd",
  "flow",
  "identity",
  "pipe"
])

/** Modules of `effect` that reach the clock, randomness, the runtime or the outside world. */
export const AMBIENT_EFFECT: ReadonlyMap<string, string> = new Map([
  ["Random", "randomness"],
  ["Clock", "the clock"],
  ["TestClock", "the clock"],
  ["DateTime", "the clock (DateTime.now)"],
  ["Cron", "the clock"],
  ["Schedule", "timing (real time)"],
  ["Effect", "effects: sleep, timeouts, the clock, randomness, I/O"],
  ["Micro", "effects: sleep, timeouts, the clock, randomness, I/O"],
  ["Stream", "effects"],
  ["Fiber", "concurrency"],
  ["Layer", "services"],
  ["Context", "services"],
  ["Runtime", "the runtime"],
  ["ManagedRuntime", "the runtime"],
  ["Console", "I/O"],
  ["Logger", "I/O"],
  ["Config", "the environment"],
  ["ConfigProvider", "the environment"],
  ["Ref", "mutable state"],
  ["SynchronizedRef", "mutable state"],
  ["Deferred", "concurrency"],
  ["Queue", "concurrency"],
  ["PubSub", "concurrency"],
  ["Scope", "resources"]
])

/** Globals that read the clock, randomness or the outside world, or run later. */
const AMBIENT_GLOBALS: ReadonlyMap<string, string> = new Map([
  ["Date", "the clock"],
  ["performance", "the clock"],
  ["process", "the environment"],
  ["setTimeout", "timers"],
  ["setInterval", "timers"],
  ["setImmediate", "timers"],
  ["clearTimeout", "timers"],
  ["clearInterval", "timers"],
  ["queueMicrotask", "timers"],
  ["require", "loading modules"],
  ["globalThis", "globals"],
  ["global", "globals"],
  ["window", "globals"],
  ["eval", "evaluation"],
  ["fetch", "I/O"],
  ["console", "I/O"],
  ["crypto", "randomness"],
  ["Buffer", "Node"],
  ["__dirname", "Node"],
  ["__filename", "Node"]
])

const CORE_MODULE = /^\.\/[A-Za-z]+\.js$/

/** Whether `id` is only a property name here (`x.Date`, `{ Date: 1 }`), not a reference. */
const isPropertyName = (id: ts.Identifier): boolean => {
  const parent = id.parent
  return (
    (ts.isPropertyAccessExpression(parent) && parent.name === id) ||
    (ts.isQualifiedName(parent) && parent.right === id) ||
    ((ts.isPropertyAssignment(parent) ||
      ts.isPropertySignature(parent) ||
      ts.isPropertyDeclaration(parent) ||
      ts.isMethodDeclaration(parent) ||
      ts.isMethodSignature(parent) ||
      ts.isGetAccessorDeclaration(parent) ||
      ts.isSetAccessorDeclaration(parent) ||
      ts.isEnumMember(parent)) &&
      parent.name === id) ||
    (ts.isBindingElement(parent) && parent.propertyName === id) ||
    ((ts.isImportSpecifier(parent) || ts.isExportSpecifier(parent)) && parent.propertyName === id)
  )
}

/** What a value import of `name` from `effect` would bring in, or `undefined` when it is pure. */
const effectImportProblem = (name: string): string | undefined => {
  const ambient = AMBIENT_EFFECT.get(name)
  if (ambient !== undefined) return `imports ${name} from "effect": ${ambient}`
  if (!PURE_EFFECT.has(name))
    return `imports ${name} from "effect", not on the list of pure modules (PURE_EFFECT)`
  return undefined
}

/**
 * The ways `source` (the text of `file`, a module of `src/core`) is not pure, one line each
 * (`file:line: what`); empty when it is pure.
 */
export const impurities = (file: string, source: string): ReadonlyArray<string> => {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const problems: Array<string> = []
  const report = (node: ts.Node, what: string) =>
    problems.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}: ${what}`)

  const checkSource = (node: ts.Node, specifier: string): boolean => {
    if (specifier === "effect" || CORE_MODULE.test(specifier)) return true
    if (specifier.startsWith("effect/")) {
      const problem = effectImportProblem(specifier.slice("effect/".length))
      if (problem !== undefined) report(node, `${problem} (through "${specifier}")`)
      return false
    }
    report(node, `imports "${specifier}": only "effect" and the core's own modules may be imported`)
    return false
  }

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const specifier = node.moduleSpecifier.text
      const clause = node.importClause
      if (clause?.isTypeOnly === true) return
      if (!checkSource(node, specifier) || specifier !== "effect" || clause === undefined) return
      if (clause.name !== undefined) report(clause, `default import of "effect"`)
      const bindings = clause.namedBindings
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) {
        report(
          bindings,
          `imports all of "effect" (* as ${bindings.name.text}): that reaches Random and Clock`
        )
      } else if (bindings !== undefined) {
        for (const element of bindings.elements) {
          if (element.isTypeOnly) continue
          const problem = effectImportProblem((element.propertyName ?? element.name).text)
          if (problem !== undefined) report(element, problem)
        }
      }
      return
    }
    if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined) {
      if (ts.isStringLiteral(node.moduleSpecifier) && !node.isTypeOnly) {
        const specifier = node.moduleSpecifier.text
        if (checkSource(node, specifier) && specifier === "effect") {
          const clause = node.exportClause
          if (clause === undefined || !ts.isNamedExports(clause)) report(node, `re-exports all of "effect"`)
          else
            for (const element of clause.elements) {
              if (element.isTypeOnly) continue
              const problem = effectImportProblem((element.propertyName ?? element.name).text)
              if (problem !== undefined) report(element, `re-${problem}`)
            }
        }
      }
      return
    }
    if (ts.isImportEqualsDeclaration(node)) report(node, "import = require(...)")
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      report(node, "dynamic import()")
    }
    if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) {
      report(node, "import.meta: the module's location")
    }
    if (
      ts.isPropertyAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "Math" &&
      node.name.text === "random"
    ) {
      report(node, "Math.random: randomness")
    }
    if (ts.isIdentifier(node) && !isPropertyName(node)) {
      const ambient = AMBIENT_GLOBALS.get(node.text)
      if (ambient !== undefined) report(node, `uses ${node.text}: ${ambient}`)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return problems
}
