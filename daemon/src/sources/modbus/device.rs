//! A simulated Modbus TCP device (tokio-modbus server): what `markoff demo` polls and what the
//! tests talk to. It holds register maps for several unit ids and can misbehave on purpose:
//! addresses missing from the map answer "illegal data address" (02), a unit can answer "busy"
//! (06) a number of times, answer slowly, or not at all, or be in STOP (02 to every read, as a
//! PLC in STOP or booting answers) when a rule of the test says so.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

/// The register tables of one unit. An address absent from its table does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// Holding registers.
    pub holding: BTreeMap<u16, u16>,
    /// Input registers.
    pub input: BTreeMap<u16, u16>,
    /// Coils.
    pub coils: BTreeMap<u16, bool>,
    /// Discrete inputs.
    pub discrete: BTreeMap<u16, bool>,
}

/// Decides, request by request, whether a unit is in STOP: it then answers exception 02 to
/// every read. The rule sees each request the unit receives, in order.
pub type StopRule = Arc<dyn Fn(&Request<'_>) -> bool + Send + Sync>;

#[derive(Default)]
struct Unit {
    regs: Registers,
    busy_for: u32,
    delay: Duration,
    mute: bool,
    stop: Option<StopRule>,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("regs", &self.regs)
            .field("busy_for", &self.busy_for)
            .field("delay", &self.delay)
            .field("mute", &self.mute)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// The simulated units, shared between the server and whoever drives the values.
#[derive(Clone, Debug, Default)]
pub struct SimDevices {
    units: Arc<Mutex<HashMap<u8, Unit>>>,
    requests: Arc<AtomicU64>,
    illegal_address: Arc<AtomicU64>,
}

impl SimDevices {
    /// No units yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, unit: u8, f: impl FnOnce(&mut Unit) -> T) -> T {
        let mut units = self.units.lock();
        f(units.entry(unit).or_default())
    }

    /// Writes holding registers starting at `addr` (creating the unit and addresses).
    pub fn set_holding(&self, unit: u8, addr: u16, words: &[u16]) {
        self.with(unit, |u| {
            for (i, w) in words.iter().enumerate() {
                u.regs.holding.insert(addr.wrapping_add(i as u16), *w);
            }
        });
    }

    /// Writes input registers starting at `addr`.
    pub fn set_input(&self, unit: u8, addr: u16, words: &[u16]) {
        self.with(unit, |u| {
            for (i, w) in words.iter().enumerate() {
                u.regs.input.insert(addr.wrapping_add(i as u16), *w);
            }
        });
    }

    /// Sets a coil.
    pub fn set_coil(&self, unit: u8, addr: u16, on: bool) {
        self.with(unit, |u| {
            u.regs.coils.insert(addr, on);
        });
    }

    /// Sets a discrete input.
    pub fn set_discrete(&self, unit: u8, addr: u16, on: bool) {
        self.with(unit, |u| {
            u.regs.discrete.insert(addr, on);
        });
    }

    /// Removes a holding register (reads touching it then answer exception 02).
    pub fn remove_holding(&self, unit: u8, addr: u16) {
        self.with(unit, |u| {
            u.regs.holding.remove(&addr);
        });
    }

    /// The unit answers "busy" (exception 06) to its next `n` requests.
    pub fn set_busy(&self, unit: u8, n: u32) {
        self.with(unit, |u| u.busy_for = n);
    }

    /// The unit answers after `delay`.
    pub fn set_delay(&self, unit: u8, delay: Duration) {
        self.with(unit, |u| u.delay = delay);
    }

    /// The unit stops answering (as if switched off) or answers again.
    pub fn set_mute(&self, unit: u8, mute: bool) {
        self.with(unit, |u| u.mute = mute);
    }

    /// Puts the unit in STOP (exception 02 to every read) or takes it out.
    pub fn set_stop(&self, unit: u8, stop: bool) {
        self.set_stop_rule(
            unit,
            stop.then(|| -> StopRule { Arc::new(|_: &Request<'_>| true) }),
        );
    }

    /// The unit is in STOP whenever `rule` says so (asked once per request); `None` runs it.
    pub fn set_stop_rule(&self, unit: u8, rule: Option<StopRule>) {
        self.with(unit, |u| u.stop = rule);
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// "Illegal data address" (02) answers given so far.
    pub fn illegal_address_answers(&self) -> u64 {
        self.illegal_address.load(Ordering::Relaxed)
    }

    fn answer(
        &self,
        req: &SlaveRequest<'_>,
    ) -> (Duration, Option<Result<Response, ExceptionCode>>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut units = self.units.lock();
        let Some(unit) = units.get_mut(&req.slave) else {
            return (Duration::ZERO, None);
        };
        if unit.mute {
            return (Duration::ZERO, None);
        }
        let in_stop = match &unit.stop {
            Some(rule) => rule(&req.request),
            None => false,
        };
        if in_stop && !matches!(req.request, Request::WriteSingleRegister(..)) {
            self.illegal_address.fetch_add(1, Ordering::Relaxed);
            return (unit.delay, Some(Err(ExceptionCode::IllegalDataAddress)));
        }
        if unit.busy_for > 0 {
            unit.busy_for -= 1;
            return (unit.delay, Some(Err(ExceptionCode::ServerDeviceBusy)));
        }
        let words = |t: &BTreeMap<u16, u16>, a: u16, n: u16| -> Result<Vec<u16>, ExceptionCode> {
            (0..n)
                .map(|i| {
                    t.get(&a.wrapping_add(i))
                        .copied()
                        .ok_or(ExceptionCode::IllegalDataAddress)
                })
                .collect()
        };
        let bits = |t: &BTreeMap<u16, bool>, a: u16, n: u16| -> Result<Vec<bool>, ExceptionCode> {
            (0..n)
                .map(|i| {
                    t.get(&a.wrapping_add(i))
                        .copied()
                        .ok_or(ExceptionCode::IllegalDataAddress)
                })
                .collect()
        };
        let r = match &req.request {
            Request::ReadHoldingRegisters(a, n) => {
                words(&unit.regs.holding, *a, *n).map(Response::ReadHoldingRegisters)
            }
            Request::ReadInputRegisters(a, n) => {
                words(&unit.regs.input, *a, *n).map(Response::ReadInputRegisters)
            }
            Request::ReadCoils(a, n) => bits(&unit.regs.coils, *a, *n).map(Response::ReadCoils),
            Request::ReadDiscreteInputs(a, n) => {
                bits(&unit.regs.discrete, *a, *n).map(Response::ReadDiscreteInputs)
            }
            Request::WriteSingleRegister(a, w) => {
                if unit.regs.holding.contains_key(a) {
                    unit.regs.holding.insert(*a, *w);
                    Ok(Response::WriteSingleRegister(*a, *w))
                } else {
                    Err(ExceptionCode::IllegalDataAddress)
                }
            }
            _ => Err(ExceptionCode::IllegalFunction),
        };
        if r == Err(ExceptionCode::IllegalDataAddress) {
            self.illegal_address.fetch_add(1, Ordering::Relaxed);
        }
        (unit.delay, Some(r))
    }
}

#[derive(Clone)]
struct SimService {
    devices: SimDevices,
}

impl tokio_modbus::server::Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Result<Option<Response>, ExceptionCode>> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let (delay, answer) = self.devices.answer(&req);
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match answer {
                None => Ok(None),
                Some(Ok(r)) => Ok(Some(r)),
                Some(Err(code)) => Err(code),
            }
        })
    }
}

/// A running simulated device server.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Serves `devices` on `addr` (use port 0 for a free port).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(devices: SimDevices, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let server = Server::new(listener);
        let task = tokio::spawn(async move {
            let on_connected = |stream, _peer| {
                let svc = SimService {
                    devices: devices.clone(),
                };
                async move { Ok(Some((svc, stream))) }
            };
            let on_error = |err: std::io::Error| tracing::debug!(error = %err, "simulated Modbus connection ended");
            if let Err(e) = server.serve(&on_connected, on_error).await {
                tracing::debug!(error = %e, "simulated Modbus server stopped");
            }
        });
        Ok(Self { addr, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and drops every connection (a device power-off).
    pub async fn stop(self) {
        self.task.abort();
        let _aborted = self.task.await;
    }
}
