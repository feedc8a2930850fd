//! Reading the files baton is pointed at (configuration, TSIG keys, CA
//! certificates, known_hosts, uploads): regular files only, each up to a
//! size bound, so that `/dev/zero`, a FIFO or a runaway file never makes
//! baton hang or eat the machine's memory. Opening never blocks (a FIFO is
//! refused, not waited on).

use std::fs::OpenOptions;
use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A configuration file (`baton.toml`, a pair file).
pub const CONFIG: u64 = 1 << 20;
/// A key file or a CA certificate bundle.
pub const KEY: u64 = 1 << 20;
/// A known_hosts file.
pub const KNOWN_HOSTS: u64 = 16 << 20;
/// A file a change uploads.
pub const UPLOAD: u64 = 256 << 20;

/// The file's bytes, if it is a regular file of at most `limit` bytes.
pub fn bytes(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let mut out = Vec::new();
    file.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(Error::new(
            ErrorKind::FileTooLarge,
            format!("it is larger than {limit} bytes, the most baton reads of such a file"),
        ));
    }
    Ok(out)
}

/// The file's text (UTF-8), as `bytes`.
pub fn text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(bytes(path, limit)?).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!("it is not UTF-8 text ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_bound_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(text(&f, 5).unwrap(), "hello");
        let e = text(&f, 4).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileTooLarge, "{e}");
        let e = bytes(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        let e = bytes(dir.path(), 10).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        #[allow(unsafe_code, reason = "mkfifo(3): std cannot make a FIFO")]
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
        let e = bytes(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert_eq!(text(&f, 10).unwrap_err().kind(), ErrorKind::InvalidData);
        assert_eq!(
            bytes(&dir.path().join("missing"), 10).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn the_bound_is_inclusive_and_an_empty_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "").unwrap();
        assert_eq!(bytes(&f, 0).unwrap(), Vec::<u8>::new());
        std::fs::write(&f, vec![b'x'; 4096]).unwrap();
        assert_eq!(bytes(&f, 4096).unwrap().len(), 4096);
        let e = bytes(&f, 4095).unwrap_err();
        assert!(e.to_string().contains("larger than 4095 bytes"), "{e}");
    }

    #[test]
    fn a_socket_is_refused_and_a_symlink_to_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = bytes(&sock, 10).unwrap_err();
        // A socket cannot even be opened (ENXIO), or is named if it can.
        assert!(
            e.raw_os_error() == Some(libc::ENXIO) || e.to_string().contains("a socket"),
            "{e}"
        );
        let f = dir.path().join("f");
        std::fs::write(&f, "key").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(text(&link, 10).unwrap(), "key");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).unwrap();
        assert_eq!(text(&dangling, 10).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn text_that_is_not_utf8_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("latin1");
        std::fs::write(&f, b"gr\xfc\xdfe").unwrap();
        let e = text(&f, 10).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        // The same bytes are fine as bytes.
        assert_eq!(bytes(&f, 10).unwrap(), b"gr\xfc\xdfe");
    }
}
