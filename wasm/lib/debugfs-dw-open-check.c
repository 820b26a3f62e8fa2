/*
 * diskwright's `dw_open_check` debugfs command (included at the end of debugfs/debugfs.c by
 * wasm/build.sh; registered in debug_cmds.ct). It refuses a filesystem that e2fsprogs 1.47 would
 * refuse to open or trust, with the rules src/e2fs/open-check.ts's openProblem applies to dumpe2fs
 * output: the open itself and the bitmaps with their checksums (debugfs has just done both; a
 * failure left no filesystem open), the superblock checksum (debugfs retries without it), every
 * group descriptor's checksum (what dumpe2fs marks EXPECTED), and ext2fs_check_desc's location
 * rules (the same loop, naming the group and the block).
 *
 * On a refusal it prints `dw_open_check: refused: REASON` on stderr and exits 1 at once, so no
 * later command of a `-f` batch runs; otherwise it prints `dw_open_check ok` on stdout.
 *
 * Why: a write session used to run a full WASM dumpe2fs beside its debugfs batch (~13 ms, most of
 * it listing every group); the batch's own debugfs has the filesystem open already.
 */

#include <stdarg.h>

static void dw_open_refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("dw_open_check: refused: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stdout);
	fflush(stderr);
	exit(1);
}

/* ext2fs_check_desc's test for one bitmap block: inside [first, last] and not yet marked. */
static void dw_open_check_block(ext2fs_block_bitmap map, dgrp_t group, const char *what,
				blk64_t blk, blk64_t first, blk64_t last)
{
	if (blk < first || blk > last)
		dw_open_refuse("group descriptor %u: bad %s location %llu", group, what,
			       (unsigned long long) blk);
	if (ext2fs_test_block_bitmap2(map, blk))
		dw_open_refuse("%s of group %u overlaps other metadata at block %llu", what, group,
			       (unsigned long long) blk);
	ext2fs_mark_block_bitmap2(map, blk);
}

void do_dw_open_check(int argc, char *argv[], int sci_idx EXT2FS_ATTR((unused)),
		      void *infop EXT2FS_ATTR((unused)))
{
	ext2_filsys fs = current_fs;
	ext2fs_block_bitmap map;
	blk64_t first, last, blk, b;
	errcode_t err;
	unsigned int j;
	dgrp_t i;

	if (argc != 1)
		dw_open_refuse("usage: %s", argv[0]);
	/* debugfs printed why on stderr (the open or the bitmaps failed) and closed it. */
	if (!fs)
		dw_open_refuse("the filesystem is not open");
	/* debugfs sets this flag only to retry an open whose superblock checksum failed. */
	if ((fs->flags & EXT2_FLAG_IGNORE_CSUM_ERRORS) ||
	    !ext2fs_superblock_csum_verify(fs, fs->super))
		dw_open_refuse("%s", error_message(EXT2_ET_SB_CSUM_INVALID));
	if (!fs->block_map || !fs->inode_map)
		dw_open_refuse("the allocation bitmaps were not read");
	for (i = 0; i < fs->group_desc_count; i++)
		if (!ext2fs_group_desc_csum_verify(fs, i))
			dw_open_refuse("group descriptor %u checksum does not match", i);

	/* ext2fs_check_desc (lib/ext2fs/check_desc.c, 1.47.0), step by step. */
	if (EXT2_DESC_SIZE(fs->super) & (EXT2_DESC_SIZE(fs->super) - 1))
		dw_open_refuse("%s", error_message(EXT2_ET_BAD_DESC_SIZE));
	err = ext2fs_allocate_subcluster_bitmap(fs, "check_desc map", &map);
	if (err)
		dw_open_refuse("%s while checking the group descriptors", error_message(err));
	for (i = 0; i < fs->group_desc_count; i++)
		ext2fs_reserve_super_and_bgd(fs, i, map);
	first = fs->super->s_first_data_block;
	last = ext2fs_blocks_count(fs->super) - 1;
	for (i = 0; i < fs->group_desc_count; i++) {
		if (!ext2fs_has_feature_flex_bg(fs->super)) {
			first = ext2fs_group_first_block2(fs, i);
			last = ext2fs_group_last_block2(fs, i);
		}
		dw_open_check_block(map, i, "block bitmap", ext2fs_block_bitmap_loc(fs, i), first, last);
		dw_open_check_block(map, i, "inode bitmap", ext2fs_inode_bitmap_loc(fs, i), first, last);
		blk = ext2fs_inode_table_loc(fs, i);
		if (blk < first || blk + fs->inode_blocks_per_group - 1 > last)
			dw_open_refuse("group descriptor %u: bad inode table location %llu-%llu", i,
				       (unsigned long long) blk,
				       (unsigned long long) (blk + fs->inode_blocks_per_group - 1));
		for (j = 0, b = blk; j < fs->inode_blocks_per_group; j++, b++) {
			if (ext2fs_test_block_bitmap2(map, b))
				dw_open_refuse("inode table of group %u overlaps other metadata at block %llu",
					       i, (unsigned long long) b);
			ext2fs_mark_block_bitmap2(map, b);
		}
	}
	ext2fs_free_block_bitmap(map);
	printf("dw_open_check ok\n");
}
