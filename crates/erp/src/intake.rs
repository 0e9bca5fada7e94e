//! Group commit for OilMat's `/create`. Concurrent requests queue their orders here; one task writes whatever is
//! waiting in one transaction ([`Orders::receive_all`]), so under load a commit carries dozens of orders, and when
//! idle a batch is one order and adds no wait. A batch that fails is written again order by order, so one bad
//! order never fails its neighbours.

use tokio::sync::{mpsc, oneshot};

use tillwire_platform::{HttpError, Text};

use crate::integrations::Integration;
use crate::orders::{Intake, Orders, Received};

const MOST: usize = 64;

type Reply = oneshot::Sender<Result<Received, HttpError>>;

#[derive(Clone)]
pub struct IntakeWriter {
    sender: mpsc::Sender<((Integration, Intake), Reply)>,
}

impl IntakeWriter {
    /// Starts the writer task; it ends when the last handle is dropped.
    pub fn start(orders: Orders) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MOST);
        tokio::spawn(run(orders, receiver));
        IntakeWriter { sender }
    }

    pub async fn receive(
        &self,
        integration: Integration,
        intake: Intake,
    ) -> Result<Received, HttpError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(((integration, intake), reply))
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())?
    }
}

async fn run(orders: Orders, mut receiver: mpsc::Receiver<((Integration, Intake), Reply)>) {
    let mut waiting = Vec::with_capacity(MOST);
    while receiver.recv_many(&mut waiting, MOST).await > 0 {
        let (batch, replies): (Vec<(Integration, Intake)>, Vec<Reply>) = waiting.drain(..).unzip();
        match orders.receive_all(&batch).await {
            Ok(received) => {
                for (reply, received) in replies.into_iter().zip(received) {
                    let _ = reply.send(Ok(received));
                }
            }
            Err(error) if batch.len() > 1 => {
                tracing::warn!(%error, size = batch.len(), "erp: a batch of orders failed; writing them one by one");
                for (item, reply) in batch.into_iter().zip(replies) {
                    let one = orders
                        .receive_all(std::slice::from_ref(&item))
                        .await
                        .and_then(|mut received| received.pop().ok_or_else(stopping));
                    let _ = reply.send(one);
                }
            }
            Err(error) => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
        }
    }
}

fn stopping() -> HttpError {
    HttpError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "stopping",
        Text::new(
            "Сервер останавливается; повторите через минуту.",
            "The server is shutting down; try again in a minute.",
        ),
    )
}
