"""What can go wrong with a Crypt4GH file or key, one exception per cause."""

from genofed.errors import GenofedError


class Crypt4GHError(GenofedError):
    """Base of every Crypt4GH format, key and data error."""


class NotCrypt4GH(Crypt4GHError):
    """The input does not start with the Crypt4GH magic bytes."""


class UnsupportedVersion(Crypt4GHError):
    """The header announces a format version other than 1."""


class MalformedHeader(Crypt4GHError):
    """The header is truncated, oversized or inconsistent."""


class NoPacketForKey(Crypt4GHError):
    """No header packet opens with the given private key: the file is for another recipient."""


class UnsupportedMethod(Crypt4GHError):
    """A header or data encryption method this implementation does not know."""


class InvalidEditList(Crypt4GHError):
    """More than one edit list, or one whose lengths make no sense."""


class TruncatedData(Crypt4GHError):
    """The data portion ends inside a segment."""


class SegmentAuthenticationFailed(Crypt4GHError):
    """A data segment failed its Poly1305 check: corrupted, tampered or wrong session key."""


class InvalidKeyFile(Crypt4GHError):
    """A key file that is not a Crypt4GH key, or is damaged."""


class WrongPassphrase(Crypt4GHError):
    """The passphrase does not unlock the private key."""


class InvalidRange(Crypt4GHError):
    """A plaintext byte range that is empty, negative or badly written."""
