/*
 * diskwright's `dw_bitmaps_snapshot` and `dw_bitmaps_flush` debugfs commands (included at the end
 * of debugfs/debugfs.c by wasm/build.sh; registered in debug_cmds.ct). A queued batch of small
 * writes (src/ext/with-filesystem.ts) starts with the snapshot and ends with the flush.
 *
 * Why: on close libext2fs writes the block and inode bitmap of every group whenever any bit
 * changed (ext2fs_write_bitmaps, lib/ext2fs/rw_bitmaps.c). Five small files into a 61-group
 * filesystem change two or three bitmap blocks, yet ~120 are written; in the WASM tool each write
 * crosses into the JS Disk hook, is staged, shipped back to the session and compared with the
 * image's old bytes by the commit, which drops it again. `dw_bitmaps_flush` is write_bitmaps of
 * e2fsprogs 1.47.0 with one difference: a group whose bitmap bits equal the snapshot taken right
 * after the open is skipped. Such a group's on-disk block already holds those bits (the snapshot
 * is what ext2fs_read_bitmaps read from it) and its checksum in the descriptor is the one
 * ext2fs_read_bitmaps verified; the only bytes a full write could still change are the block's
 * unused tail, which write_bitmaps fills with 0xff and mke2fs already wrote so. The flush then
 * clears the dirty flags, so ext2fs_close writes no bitmap again.
 */

static ext2fs_block_bitmap dw_snapshot_blocks;
static ext2fs_inode_bitmap dw_snapshot_inodes;

static void dw_bitmaps_forget(void)
{
	if (dw_snapshot_blocks)
		ext2fs_free_block_bitmap(dw_snapshot_blocks);
	if (dw_snapshot_inodes)
		ext2fs_free_inode_bitmap(dw_snapshot_inodes);
	dw_snapshot_blocks = NULL;
	dw_snapshot_inodes = NULL;
}

void do_dw_bitmaps_snapshot(int argc, char *argv[], int sci_idx EXT2FS_ATTR((unused)),
			    void *infop EXT2FS_ATTR((unused)))
{
	errcode_t err;

	if (common_args_process(argc, argv, 1, 1, argv[0], "", CHECK_FS_RW | CHECK_FS_BITMAPS))
		return;
	dw_bitmaps_forget();
	err = ext2fs_copy_bitmap(current_fs->block_map, &dw_snapshot_blocks);
	if (!err)
		err = ext2fs_copy_bitmap(current_fs->inode_map, &dw_snapshot_inodes);
	if (err) {
		dw_bitmaps_forget();
		com_err(argv[0], err, "while copying the bitmaps");
	}
}

void do_dw_bitmaps_flush(int argc, char *argv[], int sci_idx EXT2FS_ATTR((unused)),
			 void *infop EXT2FS_ATTR((unused)))
{
	ext2_filsys fs = current_fs;
	dgrp_t i;
	unsigned int j, nbits;
	int block_nbytes, inode_nbytes, csum_flag;
	char *block_buf = NULL, *inode_buf = NULL, *old_buf = NULL;
	blk64_t blk, blk_itr;
	ext2_ino_t ino_itr = 1;
	errcode_t err;

	if (common_args_process(argc, argv, 1, 1, argv[0], "", CHECK_FS_RW | CHECK_FS_BITMAPS))
		return;
	if (!dw_snapshot_blocks || !dw_snapshot_inodes) {
		com_err(argv[0], 0, "no dw_bitmaps_snapshot was taken");
		return;
	}
	csum_flag = ext2fs_has_group_desc_csum(fs);
	blk_itr = EXT2FS_B2C(fs, fs->super->s_first_data_block);
	block_nbytes = EXT2_CLUSTERS_PER_GROUP(fs->super) / 8;
	inode_nbytes = (EXT2_INODES_PER_GROUP(fs->super) + 7) / 8;
	err = io_channel_alloc_buf(fs->io, 0, &block_buf);
	if (!err)
		err = io_channel_alloc_buf(fs->io, 0, &inode_buf);
	if (!err)
		err = io_channel_alloc_buf(fs->io, 0, &old_buf);
	if (err)
		goto out;
	memset(block_buf, 0xff, fs->blocksize);
	memset(inode_buf, 0xff, fs->blocksize);
	for (i = 0; i < fs->group_desc_count; i++) {
		if (!(fs->flags & EXT2_FLAG_BB_DIRTY))
			goto skip_this_block_bitmap;
		if (csum_flag && ext2fs_bg_flags_test(fs, i, EXT2_BG_BLOCK_UNINIT))
			goto skip_this_block_bitmap;
		err = ext2fs_get_block_bitmap_range2(fs->block_map, blk_itr, block_nbytes << 3, block_buf);
		if (!err)
			err = ext2fs_get_block_bitmap_range2(dw_snapshot_blocks, blk_itr, block_nbytes << 3, old_buf);
		if (err)
			goto out;
		if (!memcmp(block_buf, old_buf, block_nbytes))
			goto skip_this_block_bitmap;
		if (i == fs->group_desc_count - 1) {
			/* Force bitmap padding for the last group */
			nbits = EXT2FS_NUM_B2C(fs, ((ext2fs_blocks_count(fs->super) - (__u64) fs->super->s_first_data_block)
						    % (__u64) EXT2_BLOCKS_PER_GROUP(fs->super)));
			if (nbits)
				for (j = nbits; j < fs->blocksize * 8; j++)
					ext2fs_set_bit(j, block_buf);
		}
		err = ext2fs_block_bitmap_csum_set(fs, i, block_buf, block_nbytes);
		if (err)
			goto out;
		ext2fs_group_desc_csum_set(fs, i);
		fs->flags |= EXT2_FLAG_DIRTY;
		blk = ext2fs_block_bitmap_loc(fs, i);
		if (blk && blk < ext2fs_blocks_count(fs->super)) {
			err = io_channel_write_blk64(fs->io, blk, 1, block_buf);
			if (err) {
				err = EXT2_ET_BLOCK_BITMAP_WRITE;
				goto out;
			}
		}
	skip_this_block_bitmap:
		blk_itr += block_nbytes << 3;

		if (!(fs->flags & EXT2_FLAG_IB_DIRTY))
			goto skip_this_inode_bitmap;
		if (csum_flag && ext2fs_bg_flags_test(fs, i, EXT2_BG_INODE_UNINIT))
			goto skip_this_inode_bitmap;
		err = ext2fs_get_inode_bitmap_range2(fs->inode_map, ino_itr, inode_nbytes << 3, inode_buf);
		if (!err)
			err = ext2fs_get_inode_bitmap_range2(dw_snapshot_inodes, ino_itr, inode_nbytes << 3, old_buf);
		if (err)
			goto out;
		if (!memcmp(inode_buf, old_buf, inode_nbytes))
			goto skip_this_inode_bitmap;
		err = ext2fs_inode_bitmap_csum_set(fs, i, inode_buf, inode_nbytes);
		if (err)
			goto out;
		ext2fs_group_desc_csum_set(fs, i);
		fs->flags |= EXT2_FLAG_DIRTY;
		blk = ext2fs_inode_bitmap_loc(fs, i);
		if (blk && blk < ext2fs_blocks_count(fs->super)) {
			err = io_channel_write_blk64(fs->io, blk, 1, inode_buf);
			if (err) {
				err = EXT2_ET_INODE_BITMAP_WRITE;
				goto out;
			}
		}
	skip_this_inode_bitmap:
		ino_itr += inode_nbytes << 3;
	}
	fs->flags &= ~(EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY);
	/* A later change needs a new snapshot; without one, close writes every bitmap again. */
	dw_bitmaps_forget();
out:
	if (err)
		com_err(argv[0], err, "while writing the bitmaps");
	ext2fs_free_mem(&block_buf);
	ext2fs_free_mem(&inode_buf);
	ext2fs_free_mem(&old_buf);
}
