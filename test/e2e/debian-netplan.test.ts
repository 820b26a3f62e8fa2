/** Real Debian 12 with netplan rendering for systemd-networkd (a cloud image's DHCP on enp1s0). */
import { describeDebianStack } from '../helpers/debian-e2e-suite.js';

describeDebianStack('netplan', [{ host: 'plan1' }]);
