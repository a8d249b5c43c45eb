"""A pass-through FUSE file system that can turn read-only while files are open on it.

    python3 rofs.py BACKING_DIR MOUNT_POINT FLAG_FILE

Every file under MOUNT_POINT is the file of the same name under BACKING_DIR. While
FLAG_FILE exists (a path outside the mount), every write, truncate, fsync, create,
rename and unlink fails with EROFS — what a process with its files already open sees
when its file system goes read-only — and access(W_OK) answers EROFS as on a read-only
mount. Reads keep working. Removing FLAG_FILE makes it
writable again.

Why not `mount -o remount,ro` of a tmpfs: Linux refuses a read-only remount (EBUSY)
while any file on it is open for writing, and a running runq always has its database,
-wal and -shm files open so. Nor chmod/chattr: root ignores modes, and neither stops
writes through descriptors that are already open.

Used by test_storage_faults.py (runs as root; needs /dev/fuse and Debian's
python3-fusepy).
"""
import errno
import os
import sys

from fusepy import FUSE, FuseOSError, Operations


class ToggleReadOnly(Operations):
    def __init__(self, root, flag):
        self.root = root
        self.flag = flag

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _check_writable(self):
        if os.path.exists(self.flag):
            raise FuseOSError(errno.EROFS)

    # -- reads -----------------------------------------------------------------------
    def access(self, path, mode):
        if mode & os.W_OK and os.path.exists(self.flag):
            raise FuseOSError(errno.EROFS)  # as access(2) answers on a read-only mount
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        return {k: getattr(st, k) for k in (
            "st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
            "st_size", "st_uid")}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        return {k: getattr(st, k) for k in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
            "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR):
            self._check_writable()
        return os.open(self._path(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    # -- writes ----------------------------------------------------------------------
    def create(self, path, mode, fi=None):
        self._check_writable()
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT, mode)

    def write(self, path, data, offset, fh):
        self._check_writable()
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        self._check_writable()
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._path(path), length)

    def fsync(self, path, datasync, fh):
        self._check_writable()
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)

    def fallocate(self, path, mode, offset, length, fh):
        self._check_writable()
        os.posix_fallocate(fh, offset, length)

    def unlink(self, path):
        self._check_writable()
        os.unlink(self._path(path))

    def rename(self, old, new):
        self._check_writable()
        os.rename(self._path(old), self._path(new))

    def mkdir(self, path, mode):
        self._check_writable()
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        self._check_writable()
        os.rmdir(self._path(path))

    def chmod(self, path, mode):
        self._check_writable()
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        self._check_writable()
        os.chown(self._path(path), uid, gid)


if __name__ == "__main__":
    backing, mount_point, flag = sys.argv[1:4]
    # No attribute caching: sizes seen through the mount are always the backing file's.
    FUSE(ToggleReadOnly(backing, flag), mount_point, foreground=True, nothreads=False,
         attr_timeout=0, entry_timeout=0, negative_timeout=0)
