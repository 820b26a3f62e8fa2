import type { Command } from '../command.js';

/** CLI commands of this area (filled in by the area's issue). */
export const commands: readonly Command[] = [];
