//! The link to one connection: opening it (TCP, RTU over TCP, or a serial port), a timeout on
//! every request (tokio-modbus has none), the pause between requests, retries of "busy"
//! (exception 06) answers, and reconnecting with capped, jittered backoff.
//!
//! A timeout or transport error drops the link; the next request reopens it. On an RTU line
//! (serial, or RTU over TCP) the reopen after a timeout of a unit that answered before waits
//! until the line has been quiet for one timeout and then discards any input, so a slow device's
//! late answer is never taken for the answer to the next request. A unit that has not answered
//! since it was last counted down (or since the start) is treated as absent: after its timeout the
//! line is reopened at once, so an unplugged slave costs its line one timeout per request, not
//! two. A garbled answer always gets the quiet time: something was on the line. A Modbus exception is
//! an answer from the device and leaves the link up, except the gateway exceptions 0x0A/0x0B: a
//! gateway saying the unit behind it did not answer is treated as no answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader as _};
use tokio_modbus::prelude::SlaveContext as _;
use tokio_modbus::{ExceptionCode, Slave};
use tracing::{debug, info, warn};

use super::config::{Parity, RegisterKind, TransmissionMode};
use super::{Connection, Target};
use crate::service::backoff::Backoff;

/// Data of a successful read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadData {
    /// Registers.
    Words(Vec<u16>),
    /// Coils or discrete inputs.
    Bits(Vec<bool>),
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The connection could not be opened.
    #[error("cannot open {target}")]
    Connect {
        /// Where.
        target: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Still waiting before the next connection attempt.
    #[error("{target} is unreachable; next attempt in {retry_in:?}")]
    Waiting {
        /// Where.
        target: String,
        /// When.
        retry_in: Duration,
    },
    /// No answer within the timeout.
    #[error("no answer from unit {unit} on {target} within {after:?}")]
    Timeout {
        /// Where.
        target: String,
        /// Unit id.
        unit: u8,
        /// Timeout.
        after: Duration,
    },
    /// A gateway answered that the unit behind it is unreachable (exception 0x0A or 0x0B).
    #[error("the gateway at {target} got no answer from unit {unit} ({code:?})")]
    Gateway {
        /// Where.
        target: String,
        /// Unit id.
        unit: u8,
        /// The gateway's exception.
        code: ExceptionCode,
    },
    /// The transport failed or the answer did not match the request.
    #[error("transport error talking to unit {unit} on {target}: {detail}")]
    Transport {
        /// Where.
        target: String,
        /// Unit id.
        unit: u8,
        /// What happened.
        detail: String,
    },
}

/// The owner of one connection. Not shared: one poller task owns it.
pub struct Link {
    conn: Arc<Connection>,
    ctx: Option<Context>,
    backoff: Backoff,
    next_attempt: Option<Instant>,
    last_request: Option<Instant>,
    /// A serial line must stay quiet until then before it is reopened.
    quiet_until: Option<Instant>,
    /// Units that answered (data or an exception) since they were last counted down.
    answered: HashSet<u8>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("connection", &self.conn.name)
            .field("open", &self.ctx.is_some())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link that opens on first use.
    pub fn new(conn: Arc<Connection>) -> Self {
        let backoff = Backoff::new(Duration::from_secs(1), conn.reconnect_max);
        Self {
            conn,
            ctx: None,
            backoff,
            next_attempt: None,
            last_request: None,
            quiet_until: None,
            answered: HashSet::new(),
        }
    }

    /// Counts `slave` as absent (its device is down): a timeout of it no longer leaves the line
    /// quiet for a late answer, until it answers again.
    pub fn absent(&mut self, slave: u8) {
        self.answered.remove(&slave);
    }

    /// Whether the link is open.
    pub fn is_open(&self) -> bool {
        self.ctx.is_some()
    }

    /// Drops the link after a timeout or a garbled answer. When a late answer may follow (see
    /// the module doc), an RTU line (serial, or RTU over TCP through a device server) is then
    /// left quiet for one timeout before it is reopened, so it cannot be read as the next one.
    fn drop_after_failure(&mut self, late_answer_possible: bool) {
        // RTU frames carry no transaction id: a late answer, relayed by a serial device server
        // too, would be taken for the answer to the next request.
        if late_answer_possible
            && (matches!(self.conn.target, Target::Serial { .. })
                || self.conn.mode == TransmissionMode::RtuOverTcp)
        {
            self.quiet_until =
                Some(Instant::now() + self.conn.timeout.max(Duration::from_millis(50)));
        }
        self.reset();
    }

    /// Drops the connection (after a timeout or a transport error).
    pub fn reset(&mut self) {
        if self.ctx.take().is_some() {
            debug!(connection = %self.conn.name, "Modbus link dropped.");
        }
    }

    async fn ensure_open(&mut self) -> Result<(), LinkError> {
        if self.ctx.is_some() {
            return Ok(());
        }
        if let Some(quiet) = self.quiet_until.take() {
            tokio::time::sleep_until(quiet).await;
        }
        let target = self.conn.target.to_string();
        if let Some(at) = self.next_attempt {
            let now = Instant::now();
            if at > now {
                return Err(LinkError::Waiting {
                    target,
                    retry_in: at - now,
                });
            }
        }
        match tokio::time::timeout(
            self.conn.timeout.max(Duration::from_secs(1)),
            open(&self.conn),
        )
        .await
        {
            Ok(Ok(ctx)) => {
                if self.backoff.failures() > 0 {
                    info!(connection = %self.conn.name, target, "Modbus connection restored.");
                }
                self.backoff.reset();
                self.next_attempt = None;
                self.ctx = Some(ctx);
                if !self.conn.pause_after_connect.is_zero() {
                    tokio::time::sleep(self.conn.pause_after_connect).await;
                }
                Ok(())
            }
            Ok(Err(source)) => Err(self.connect_failed(LinkError::Connect { target, source })),
            Err(_elapsed) => Err(self.connect_failed(LinkError::Connect {
                target,
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })),
        }
    }

    fn connect_failed(&mut self, e: LinkError) -> LinkError {
        let delay = self.backoff.next_delay();
        self.next_attempt = Some(Instant::now() + delay);
        if self.backoff.failures() == 1 {
            warn!(connection = %self.conn.name, error = %e, ?delay, "Modbus connection failed; retrying with backoff.");
        } else {
            debug!(connection = %self.conn.name, error = %e, ?delay, "Modbus connection still failing.");
        }
        e
    }

    /// Reads `count` registers or bits at `start` from unit `slave`, retrying "busy" answers.
    ///
    /// # Errors
    /// [`LinkError`] when there is no answer; `Ok(Err(code))` is the device's exception.
    pub async fn read(
        &mut self,
        slave: u8,
        kind: RegisterKind,
        start: u16,
        count: u16,
    ) -> Result<Result<ReadData, ExceptionCode>, LinkError> {
        let mut busy = 0;
        loop {
            let answer = self.read_once(slave, kind, start, count).await?;
            match answer {
                Err(ExceptionCode::ServerDeviceBusy) if busy < self.conn.busy_retries => {
                    busy += 1;
                    debug!(connection = %self.conn.name, unit = slave, attempt = busy, "Device busy (exception 06); retrying.");
                    tokio::time::sleep(self.conn.busy_retries_wait).await;
                }
                other => return Ok(other),
            }
        }
    }

    async fn read_once(
        &mut self,
        slave: u8,
        kind: RegisterKind,
        start: u16,
        count: u16,
    ) -> Result<Result<ReadData, ExceptionCode>, LinkError> {
        self.ensure_open().await?;
        if let Some(last) = self.last_request {
            let ready = last + self.conn.pause_between_requests;
            if ready > Instant::now() {
                tokio::time::sleep_until(ready).await;
            }
        }
        let timeout = self.conn.timeout;
        let target = self.conn.target.to_string();
        let Some(ctx) = self.ctx.as_mut() else {
            return Err(LinkError::Transport {
                target,
                unit: slave,
                detail: "link closed".into(),
            });
        };
        ctx.set_slave(Slave(slave));
        let result = tokio::time::timeout(timeout, async {
            match kind {
                RegisterKind::Holding => ctx
                    .read_holding_registers(start, count)
                    .await
                    .map(|r| r.map(ReadData::Words)),
                RegisterKind::Input => ctx
                    .read_input_registers(start, count)
                    .await
                    .map(|r| r.map(ReadData::Words)),
                RegisterKind::Coil => ctx
                    .read_coils(start, count)
                    .await
                    .map(|r| r.map(ReadData::Bits)),
                RegisterKind::Discrete => ctx
                    .read_discrete_inputs(start, count)
                    .await
                    .map(|r| r.map(ReadData::Bits)),
            }
        })
        .await;
        self.last_request = Some(Instant::now());
        match result {
            Err(_elapsed) => {
                let late_answer_possible = self.answered.contains(&slave);
                self.drop_after_failure(late_answer_possible);
                Err(LinkError::Timeout {
                    target,
                    unit: slave,
                    after: timeout,
                })
            }
            Ok(Err(e)) => {
                self.drop_after_failure(true);
                Err(LinkError::Transport {
                    target,
                    unit: slave,
                    detail: e.to_string(),
                })
            }
            Ok(Ok(Err(
                code @ (ExceptionCode::GatewayPathUnavailable | ExceptionCode::GatewayTargetDevice),
            ))) => Err(LinkError::Gateway {
                target,
                unit: slave,
                code,
            }),
            Ok(Ok(answer)) => {
                self.answered.insert(slave);
                Ok(answer)
            }
        }
    }
}

/// How long a serial port held by someone else is retried before the open fails.
const SERIAL_BUSY_RETRY: Duration = Duration::from_millis(500);

/// Opens a client context for the connection.
async fn open(conn: &Connection) -> std::io::Result<Context> {
    match (&conn.target, conn.mode) {
        (Target::Tcp { host, port }, mode) => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            stream.set_nodelay(true)?;
            Ok(match mode {
                TransmissionMode::RtuOverTcp => {
                    tokio_modbus::client::rtu::attach_slave(stream, Slave(1))
                }
                _ => tokio_modbus::client::tcp::attach_slave(stream, Slave(1)),
            })
        }
        (Target::Serial { path }, _) => {
            use tokio_serial::SerialPortBuilderExt as _;
            let s = conn.serial;
            let builder = tokio_serial::new(path.to_string_lossy(), s.baud_rate)
                .data_bits(match s.data_bits {
                    5 => tokio_serial::DataBits::Five,
                    6 => tokio_serial::DataBits::Six,
                    7 => tokio_serial::DataBits::Seven,
                    _ => tokio_serial::DataBits::Eight,
                })
                .parity(match s.parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                })
                .stop_bits(if s.stop_bits == 2 {
                    tokio_serial::StopBits::Two
                } else {
                    tokio_serial::StopBits::One
                });
            // The port is opened with an exclusive `flock`. A process forked by this one keeps a
            // copy of the descriptor until it execs, so the lock can outlive our close by a few
            // milliseconds: a busy port is retried briefly before it counts as in use.
            let give_up = Instant::now() + SERIAL_BUSY_RETRY;
            let port = loop {
                match builder.clone().open_native_async() {
                    Ok(port) => break port,
                    Err(e)
                        if e.kind == tokio_serial::ErrorKind::NoDevice
                            && Instant::now() < give_up =>
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(std::io::Error::other(e)),
                }
            };
            // Whatever is already in the input buffer answers no request of ours.
            tokio_serial::SerialPort::clear(&port, tokio_serial::ClearBuffer::Input)
                .map_err(std::io::Error::other)?;
            Ok(tokio_modbus::client::rtu::attach_slave(port, Slave(1)))
        }
    }
}
