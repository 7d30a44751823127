//! What can go wrong in an MSE handshake.

/// Why an MSE handshake failed. Every one of these ends the connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MseError {
    /// Reading or writing the stream failed.
    #[error("mse: {0}")]
    Io(#[from] std::io::Error),
    /// The other side closed the connection mid-handshake (what a peer that does not speak MSE does).
    #[error("mse: the peer closed the connection during the handshake")]
    Closed,
    /// The other side's public key is 0, 1, P - 1 or not below P.
    #[error("mse: the peer's public key is out of range")]
    BadPublicKey,
    /// The synchronisation pattern did not come within the longest padding allowed: not an MSE
    /// handshake, or keys that do not match.
    #[error("mse: no synchronisation pattern in the first {0} bytes")]
    NoSync(usize),
    /// The initiator asked for a torrent we do not have.
    #[error("mse: the peer asked for a torrent we do not have")]
    UnknownTorrent,
    /// The verification constant did not decrypt to zeros.
    #[error("mse: the verification constant is wrong")]
    BadVc,
    /// A padding field longer than 512 bytes.
    #[error("mse: padding of {0} bytes (at most 512)")]
    PadTooLong(usize),
    /// The initiator offered no method we accept (its `crypto_provide` bits).
    #[error("mse: no crypto method in common (the peer offers {theirs:#x})")]
    NoCommonMethod {
        /// The initiator's `crypto_provide`.
        theirs: u32,
    },
    /// The responder selected a method we did not offer, or more than one.
    #[error("mse: the peer selected {0:#x}, which was not offered")]
    BadSelect(u32),
    /// An initial payload longer than its 16-bit length field.
    #[error("mse: an initial payload of {0} bytes (at most 65,535)")]
    InitialPayloadTooLong(usize),
    /// The operating system gave no randomness for a key.
    #[error("mse: no randomness for a key: {0}")]
    Random(String),
}
