/** Real Debian 12 with NetworkManager (no keyfile on disk, as the installer leaves it). */
import { describeDebianStack } from '../helpers/debian-e2e-suite.js';

describeDebianStack('networkmanager', [{ host: 'nm1' }]);
