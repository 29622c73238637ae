//! The license actor under a supervisor: if the actor fails (a panic in a handler) or stops
//! when nobody asked it to, the supervisor starts it again after a backoff (250 ms,
//! doubling up to 30 s), logged and counted (`tessera_license_restarts_total`). Meanwhile
//! key requests are answered 503, as when the actor does not answer. Everyone who talks to
//! the actor holds a [`LicenseRef`], which always names the running one; the supervisor
//! also sends it its periodic [`LicenseMsg::Tick`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::actor::{LicenseActor, LicenseConfig, LicenseMsg};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The running license actor, whichever it is now; `None` while it is being started again.
#[derive(Clone, Default)]
pub struct LicenseRef(Arc<RwLock<Option<ActorRef<LicenseMsg>>>>);

impl LicenseRef {
    pub fn get(&self) -> Option<ActorRef<LicenseMsg>> {
        self.0.read().expect("license ref").clone()
    }

    /// Asks the running actor and waits `patience` for its answer: `None` when no actor is
    /// running (it is being started again) or it did not answer in time.
    pub async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> LicenseMsg,
        patience: Duration,
    ) -> Option<T> {
        let actor = self.get()?;
        match actor.call(msg, Some(patience)).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    }

    fn set(&self, actor: Option<ActorRef<LicenseMsg>>) {
        *self.0.write().expect("license ref") = actor;
    }
}

pub struct LicenseSupervisor;

pub struct SupervisorConfig {
    pub license: LicenseConfig,
    /// How often the actor is told to rotate keys and prune counts.
    pub tick: Duration,
    /// Where the running actor is published.
    pub handle: LicenseRef,
}

pub enum SupervisorMsg {
    /// Start the actor again (after a backoff).
    Restart,
    /// Forwarded to the actor as [`LicenseMsg::Tick`].
    Tick,
}

pub struct SupervisorState {
    cfg: SupervisorConfig,
    backoff: Duration,
}

impl SupervisorState {
    async fn start_actor(&mut self, myself: &ActorRef<SupervisorMsg>) -> Result<(), ActorProcessingErr> {
        let (actor, _) = Actor::spawn_linked(None, LicenseActor, self.cfg.license.clone(), myself.get_cell()).await?;
        self.cfg.handle.set(Some(actor));
        Ok(())
    }
}

impl Actor for LicenseSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorConfig;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        cfg: SupervisorConfig,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState { cfg, backoff: FIRST_BACKOFF };
        state.start_actor(&myself).await?;
        myself.send_interval(state.cfg.tick, || SupervisorMsg::Tick);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Tick => {
                if let Some(actor) = st.cfg.handle.get() {
                    let _ = actor.cast(LicenseMsg::Tick);
                }
            }
            SupervisorMsg::Restart => match st.start_actor(&myself).await {
                Ok(()) => tracing::info!("license actor started again"),
                Err(e) => {
                    tracing::error!(error = %e, backoff_ms = st.backoff.as_millis() as u64, "license actor did not start; trying again");
                    myself.send_after(st.backoff, || SupervisorMsg::Restart);
                    st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        st.cfg.handle.set(None);
        myself.stop_children(Some("the node is stopping".into()));
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let why = match &evt {
            SupervisionEvent::ActorFailed(_, err) => err.to_string(),
            SupervisionEvent::ActorTerminated(_, _, reason) => reason.clone().unwrap_or_else(|| "stopped".into()),
            _ => return Ok(()),
        };
        st.cfg.handle.set(None);
        metrics::counter!("tessera_license_restarts_total").increment(1);
        tracing::error!(reason = %why, backoff_ms = st.backoff.as_millis() as u64, "license actor stopped; starting it again");
        myself.send_after(st.backoff, || SupervisorMsg::Restart);
        st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// Starts the supervisor, and under it the license actor; the actor is in `handle` once
/// this returns.
pub async fn start(
    license: LicenseConfig,
    tick: Duration,
) -> Result<(LicenseRef, ActorRef<SupervisorMsg>), ractor::SpawnErr> {
    let handle = LicenseRef::default();
    let cfg = SupervisorConfig { license, tick, handle: handle.clone() };
    let (supervisor, _) = Actor::spawn(None, LicenseSupervisor, cfg).await?;
    Ok((handle, supervisor))
}
