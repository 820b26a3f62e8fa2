import { InvalidArgumentError } from '../../errors.js';
import { backupFilesOperation, bashHistoryOperation, crashDataOperation, dhcpClientStateOperation, logfilesOperation, mailSpoolOperation, packageManagerCacheOperation, randomSeedOperation, tmpFilesOperation, utmpOperation } from './cleanup.js';
import { fstabOperation } from './fstab.js';
import { hostsOperation } from './hosts.js';
import { networkdOperation } from './networkd.js';
import { hostnameOperation, machineIdOperation, resolvConfOperation, udevNetRulesOperation } from './files.js';
import { inittabSerialOperation } from './inittab.js';
import { networkInterfacesOperation } from './interfaces.js';
import { networkManagerOperation } from './networkmanager.js';
import { netplanOperation } from './netplan.js';
import { cloudInitOperation, serialGettyOperation, sshHostKeysOperation } from './systemd.js';
import type { TemplateOperation } from './types.js';

export type { OperationContext, OperationOutcome, TemplateOperation } from './types.js';
export { DEFAULT_INTERFACE } from './types.js';

/** Every operation, in the order they run: the article's five first, then today's. */
export const TEMPLATE_OPERATIONS: readonly TemplateOperation[] = [
  udevNetRulesOperation,
  hostnameOperation,
  resolvConfOperation,
  networkInterfacesOperation,
  inittabSerialOperation,
  hostsOperation,
  machineIdOperation,
  sshHostKeysOperation,
  serialGettyOperation,
  netplanOperation,
  networkManagerOperation,
  networkdOperation,
  cloudInitOperation,
  fstabOperation,
  logfilesOperation,
  bashHistoryOperation,
  tmpFilesOperation,
  packageManagerCacheOperation,
  dhcpClientStateOperation,
  randomSeedOperation,
  utmpOperation,
  crashDataOperation,
  backupFilesOperation,
  mailSpoolOperation,
];

/** Names and one-line descriptions, for `diskwright template ops`. */
export const templateOperations: readonly { readonly name: string; readonly description: string }[] =
  TEMPLATE_OPERATIONS.map(({ name, description }) => ({ name, description }));

function checkNames(names: readonly string[], option: string): void {
  const known = new Set(TEMPLATE_OPERATIONS.map((op) => op.name));
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(`${option}: unknown operation \`${unknown[0]}\``, {
      actual: unknown[0],
      expected: [...known],
      hint: `the operations are: ${[...known].join(', ')} (see \`diskwright template ops\`)`,
    });
  }
}

/**
 * Every operation with whether it runs: those named in `ops` (all when not given) minus those in
 * `skip`. Unknown names are an `E_INVALID_ARGUMENT` error listing the known ones.
 */
export function selectOperations(
  ops?: readonly string[],
  skip?: readonly string[],
): { operation: TemplateOperation; selected: boolean }[] {
  if (ops) checkNames(ops, '--ops');
  if (skip) checkNames(skip, '--skip');
  return TEMPLATE_OPERATIONS.map((operation) => ({
    operation,
    selected: (ops === undefined || ops.includes(operation.name)) && !(skip ?? []).includes(operation.name),
  }));
}
