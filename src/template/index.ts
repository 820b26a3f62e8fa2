export { PLACEHOLDERS, DERIVED_PLACEHOLDERS, ALL_PLACEHOLDERS, type PlaceholderName, renderPlaceholders, findPlaceholders, completePlaceholderValues, netmaskToPrefix } from './placeholders.js';
export { templateOperations, selectOperations, TEMPLATE_OPERATIONS, type TemplateOperation, type OperationOutcome } from './operations/index.js';
export { applyTemplateOperations, type ApplyOptions, type OperationReport, type TemplatedFile } from './apply.js';
export { makeTemplate, type MakeTemplateOptions } from './make.js';
export { readTemplateManifest, parseTemplateManifest, manifestPath, MANIFEST_SUFFIX, MAX_MANIFEST_BYTES, type TemplateManifest } from './manifest.js';
export { extractKernel, findKernel, initrdNames, type ExtractKernelOptions, type KernelFiles, type KernelCandidate } from './kernel.js';
export { compareVersions } from './version-sort.js';
export type { FilesystemFacts } from './filesystem.js';
