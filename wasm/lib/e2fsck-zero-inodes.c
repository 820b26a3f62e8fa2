/*
 * diskwright: e2fsck pass 1 steps over a run of all-zero inodes in one go.
 *
 * Why: an ext2/3 filesystem without uninit_bg has no itable_unused, so pass 1 scans every inode of
 * every group; a grown 10 GiB ext3 has ~1.3 M of them, nearly all never used (all zero bytes).
 * Each one costs ext2fs_get_next_inode_full (a 256-byte copy, checksum test) plus the loop below,
 * which for such an inode does nothing at all: measured, that is a third of e2fsck -fn's CPU on a
 * thin instance. Included into pass1.c (after quota_inum_is_reserved) by wasm/build.sh, which also
 * inserts the one call, in the branch for an unused inode at ino >= s_first_ino.
 *
 * Proof that the result is the same. Pass 1, for an inode I that ext2fs_get_next_inode_full
 * returns with all bytes zero, ino(I) >= EXT2_FIRST_INODE and !quota_inum_is_reserved(ino(I)):
 *  - get_next_inode_full returns 0: no bad block in this buffer chunk (EXT2_SF_BAD_INODE_BLK and
 *    EXT2_SF_BAD_EXTRA_BYTES are checked clear below; they are per chunk, set by
 *    get_next_blocks), no checksum or garbage status (required: no metadata_csum, the only
 *    feature under which ext2fs_inode_csum_verify or IBLOCK_STATUS_INSANE can fail); its only
 *    effects are ptr/bytes_left/inodes_left/current_inode, advanced here the same way. Inodes are
 *    only taken from the current buffer (no read, no group change: inodes_left bounds the run), so
 *    get_next_blocks/get_next_blockgroup and the done_group callback run exactly as before.
 *  - in the loop: i_dtime == 0 (no PR_1_LOW_DTIME), i_links_count == 0 (no icount store), the
 *    unused branch is taken (ino >= first ino, quota inodes excluded below), i_mode == 0 (no
 *    PR_1_ZERO_DTIME), FINISH_INODE_LOOP with failed_csum 0 does nothing, then `continue`.
 *  - at the loop top: e2fsck_mmp_update runs after ino % (4 * inodes_per_group) == 1, i.e. after
 *    the first inode of a group; a skipped inode is never the first of its group (it follows the
 *    current one in the same buffer), and no skip starts from such an inode, so the update runs
 *    after the same inodes. pass1_readahead keys on the group (ra_group), not on each inode.
 * So pass 1 leaves every map, count, problem and output as it would; only the per-inode work goes.
 * The struct below mirrors lib/ext2fs/inode.c of e2fsprogs 1.47.0 (pinned in wasm/SOURCE), whose
 * scan type is opaque outside it; the magic number is checked before it is used.
 */
struct dw_inode_scan_1_47 {
	errcode_t		magic;
	ext2_filsys		fs;
	ext2_ino_t		current_inode;
	blk64_t			current_block;
	dgrp_t			current_group;
	ext2_ino_t		inodes_left;
	blk_t			blocks_left;
	dgrp_t			groups_left;
	blk_t			inode_buffer_blocks;
	char *			inode_buffer;
	int			inode_size;
	char *			ptr;
	int			bytes_left;
	char			*temp_buffer;
	errcode_t		(*done_group)(ext2_filsys fs,
					      ext2_inode_scan scan,
					      dgrp_t group,
					      void * priv_data);
	void *			done_group_data;
	int			bad_block_ptr;
	int			scan_flags;
	int			reserved[6];
};

static int dw_inode_is_zero(const char *p, int size)
{
	const unsigned long long *w = (const unsigned long long *) p;
	int i;

	for (i = 0; i < size / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

/*
 * Called after pass 1 finished the all-zero unused inode `ino` (the last one the scan returned):
 * consumes the all-zero inodes that follow it in the scan's buffer and returns the last inode
 * number consumed (`ino` when none).
 */
static ext2_ino_t dw_skip_zero_inodes(e2fsck_t ctx, ext2_inode_scan handle,
				      ext2_ino_t ino, struct ext2_inode *inode,
				      int inode_size)
{
	struct dw_inode_scan_1_47 *scan = (struct dw_inode_scan_1_47 *) handle;
	ext2_filsys fs = ctx->fs;
	ext2_ino_t n, max;
	enum quota_type qtype;

	if (scan->magic != EXT2_ET_MAGIC_INODE_SCAN || scan->fs != fs ||
	    scan->current_inode != ino || scan->inode_size != inode_size ||
	    inode_size % 8 != 0 ||
	    ext2fs_has_feature_metadata_csum(fs->super) ||
	    (scan->scan_flags & (EXT2_SF_BAD_INODE_BLK | EXT2_SF_BAD_EXTRA_BYTES)) ||
	    ino % (fs->super->s_inodes_per_group * 4) == 1 ||
	    !dw_inode_is_zero((const char *) inode, inode_size))
		return ino;
	if (scan->bytes_left < inode_size)
		return ino;
	max = scan->bytes_left / inode_size;
	if (max > scan->inodes_left)
		max = scan->inodes_left;
	/* A reserved quota inode takes pass 1's other branches: stop before it. */
	for (qtype = 0; qtype < MAXQUOTAS; qtype++) {
		ext2_ino_t q = quota_type2inum(qtype, fs->super);

		if (q > ino && q - ino - 1 < max)
			max = q - ino - 1;
	}
	for (n = 0; n < max; n++)
		if (!dw_inode_is_zero(scan->ptr + (size_t) n * inode_size, inode_size))
			break;
	if (n == 0)
		return ino;
	scan->ptr += (size_t) n * inode_size;
	scan->bytes_left -= n * inode_size;
	scan->inodes_left -= n;
	scan->current_inode += n;
	return ino + n;
}
