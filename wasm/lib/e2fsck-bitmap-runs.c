/*
 * diskwright: e2fsck passes 4 and 5 take whole runs of inodes from the bitmaps instead of testing
 * each inode's bit one at a time (on a grown 10 GiB ext3 that is 1.3 M inodes, ~40 k used, and
 * three rbtree bitmap lookups per inode: a quarter of e2fsck -fn's CPU on a thin instance).
 * Included into pass4.c and pass5.c by wasm/build.sh (each file defines only what it uses).
 */

#ifdef DW_PASS4
/*
 * Pass 4's loop does nothing for an inode that is not in inode_used_map but `continue` (after the
 * special-inode checks, which `continue` too); only the progress call at i % inodes_per_group == 0
 * and the signal check happen before that. Called at that `continue` with the unused inode i:
 * returns the inode to continue from — the one before the next used inode, or before the next
 * i % inodes_per_group == 0, whichever comes first — so the loop's i++ lands on the next inode it
 * would have done anything for, and the progress calls come at the same inodes.
 */
static ext2_ino_t dw_pass4_skip_unused(e2fsck_t ctx, ext2_ino_t i)
{
	ext2_filsys fs = ctx->fs;
	ext2_ino_t ipg = fs->super->s_inodes_per_group;
	ext2_ino_t end, next;

	if (ext2fs_test_inode_bitmap2(ctx->inode_used_map, i) || ipg == 0)
		return i;
	end = (i / ipg + 1) * ipg - 1;	/* the last inode before the next progress call */
	if (end < i || end > fs->super->s_inodes_count)
		end = fs->super->s_inodes_count;
	if (end <= i)
		return i;
	switch (ext2fs_find_first_set_inode_bitmap2(ctx->inode_used_map, i + 1,
						    end, &next)) {
	case 0:
		return next - 1;
	case ENOENT:		/* none used up to `end` */
		return end;
	default:		/* cannot tell: no skip */
		return i;
	}
}
#endif

#ifdef DW_PASS5
/*
 * check_inode_bitmaps, at the first inode `first` of a group that is not skipped as uninit: when
 * inode_used_map and the on-disk inode bitmap (or, on the redo pass, inode_used_map itself) agree
 * on every inode of the group, the per-inode loop finds no problem in it, and what it counts is
 * the group's used inodes (not free), the used directories (inode_dir_map and used), and, without
 * E2F_OPT_DISCARD, nothing else (e2fsck_discard_inodes returns at once; first_free only feeds it).
 * Returns 1 with those counts and the last inode's bit, or 0 to take the loop as before.
 */
static int dw_inode_group_matches(e2fsck_t ctx, ext2_ino_t first, int redo,
				  unsigned int *used, unsigned int *dirs,
				  int *last_bit)
{
	ext2_filsys fs = ctx->fs;
	ext2_ino_t ipg = fs->super->s_inodes_per_group;
	unsigned int nbytes = ipg / 8, k;
	unsigned char *actual = NULL, *ondisk = NULL, *dir = NULL;
	int same = 0;

	if ((ctx->options & E2F_OPT_DISCARD) || ipg == 0 || ipg % 8 ||
	    fs->super->s_inodes_count < ipg ||
	    first - 1 > fs->super->s_inodes_count - ipg || !ctx->inode_dir_map)
		return 0;
	if (ext2fs_get_mem(nbytes, &actual) || ext2fs_get_mem(nbytes, &ondisk) ||
	    ext2fs_get_mem(nbytes, &dir))
		goto out;
	if (ext2fs_get_inode_bitmap_range2(ctx->inode_used_map, first, ipg, actual))
		goto out;
	if (!redo) {
		if (ext2fs_get_inode_bitmap_range2(fs->inode_map, first, ipg, ondisk) ||
		    memcmp(actual, ondisk, nbytes) != 0)
			goto out;
	}
	if (ext2fs_get_inode_bitmap_range2(ctx->inode_dir_map, first, ipg, dir))
		goto out;
	for (k = 0; k < nbytes; k++)
		dir[k] &= actual[k];
	*used = ext2fs_bitcount(actual, nbytes);
	*dirs = ext2fs_bitcount(dir, nbytes);
	*last_bit = (actual[nbytes - 1] >> 7) & 1;
	same = 1;
out:
	ext2fs_free_mem(&actual);
	ext2fs_free_mem(&ondisk);
	ext2fs_free_mem(&dir);
	return same;
}
#endif
