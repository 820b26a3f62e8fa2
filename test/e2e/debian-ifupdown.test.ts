/** Real Debian 12 with ifupdown (the installer's `allow-hotplug enp1s0` / DHCP): two instances. */
import { describeDebianStack } from '../helpers/debian-e2e-suite.js';

describeDebianStack('ifupdown', [{ host: 'deb1' }, { host: 'deb2', extra: 'password' }]);
