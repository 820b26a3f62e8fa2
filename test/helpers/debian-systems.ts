/**
 * The Debian 12 systems the real-Debian tests install (package lists for {@link debianRootfs}),
 * one per network stack the Debian installer or a cloud image leaves behind. Shared so every test
 * that asks for the same stack reuses the same cached tarball.
 */
import { debianRootfs, type DebianRootfs, type DebianRootfsOptions } from './debian-rootfs.js';

/** What every bootable test system needs: init, kernel + initramfs, udev, sshd, ip. */
export const DEBIAN_BOOT_PACKAGES = ['systemd-sysv', 'linux-image-amd64', 'initramfs-tools', 'udev', 'openssh-server', 'iproute2', 'procps', 'kmod'] as const;

/** The network stack a system is configured with. */
export type DebianNetworkStack = 'ifupdown' | 'netplan' | 'networkmanager';

/** Packages of each stack on top of {@link DEBIAN_BOOT_PACKAGES}. */
export const DEBIAN_STACK_PACKAGES: Readonly<Record<DebianNetworkStack, readonly string[]>> = {
  // What the Debian installer sets up on a server: ifupdown with its DHCP client.
  ifupdown: ['ifupdown', 'isc-dhcp-client'],
  // Debian's cloud images: netplan rendering for systemd-networkd.
  netplan: ['netplan.io'],
  // A desktop-style install (no ifupdown configuration for the NIC).
  networkmanager: ['network-manager'],
};

/** The cached tarball of the Debian 12 system with `stack`. */
export function debianSystemTarball(stack: DebianNetworkStack, options: Omit<DebianRootfsOptions, 'packages'> = {}): Promise<DebianRootfs> {
  return debianRootfs({ ...options, packages: [...DEBIAN_BOOT_PACKAGES, ...DEBIAN_STACK_PACKAGES[stack]] });
}
