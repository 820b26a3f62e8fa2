export { PLACEHOLDERS, DERIVED_PLACEHOLDERS, ALL_PLACEHOLDERS, type PlaceholderName, renderPlaceholders, findPlaceholders, completePlaceholderValues, netmaskToPrefix } from './placeholders.js';
export { templateOperations, selectOperations, TEMPLATE_OPERATIONS, type TemplateOperation, type OperationOutcome } from './operations/index.js';
export { applyTemplateOperations, type ApplyOptions, type OperationReport, type TemplatedFile } from './apply.js';
