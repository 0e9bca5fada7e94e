//! Group commit for imports. Concurrent imports queue their orders here; one task writes whatever is waiting
//! as a single batch transaction (see `Kitchen::register_orders`). Under load a batch holds dozens of receipts,
//! so the per-receipt cost of round trips and commits shrinks; when idle a batch is one receipt and adds no wait.

use tokio::sync::{mpsc, oneshot};

use crate::storage::{NewOrder, Registered};
use crate::{Kitchen, KitchenError};
use tillwire_platform::Text;

const MAX_BATCH: usize = 64;
/// Keeps a batch's statements well inside SQLite's and PostgreSQL's bind-parameter limits.
const MAX_BATCH_LINES: usize = 2_000;

type Reply = oneshot::Sender<Result<Option<Registered>, KitchenError>>;

#[derive(Clone)]
pub(crate) struct OrderWriter {
    sender: mpsc::Sender<(NewOrder, Reply)>,
}

impl OrderWriter {
    /// Starts the writer task; it ends when the last `OrderWriter` handle is dropped.
    pub(crate) fn start(kitchen: Kitchen) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(kitchen, receiver));
        OrderWriter { sender }
    }

    pub(crate) async fn register(
        &self,
        order: NewOrder,
    ) -> Result<Option<Registered>, KitchenError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((order, reply))
            .await
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

async fn run(kitchen: Kitchen, mut receiver: mpsc::Receiver<(NewOrder, Reply)>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        while !waiting.is_empty() {
            let mut lines = 0;
            let take = waiting
                .iter()
                .take_while(|(order, _): &&(NewOrder, Reply)| {
                    lines += order.lines.len();
                    lines <= MAX_BATCH_LINES
                })
                .count()
                .max(1);
            let batch: Vec<(NewOrder, Reply)> = waiting.drain(..take).collect();
            write(&kitchen, batch).await;
        }
    }
}

async fn write(kitchen: &Kitchen, batch: Vec<(NewOrder, Reply)>) {
    let (orders, replies): (Vec<NewOrder>, Vec<Reply>) = batch.into_iter().unzip();
    match kitchen.register_orders(&orders).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        // One bad order must not fail its neighbours: retry each alone so only it gets the error.
        Err(error) if orders.len() > 1 => {
            tracing::warn!(%error, size = orders.len(), "batch import failed; retrying its receipts one by one");
            for (order, reply) in orders.into_iter().zip(replies) {
                let result = kitchen
                    .register_orders(std::slice::from_ref(&order))
                    .await
                    .map(|mut r| r.pop().flatten());
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(error));
            }
        }
    }
}

fn shutting_down() -> KitchenError {
    KitchenError::Conflict(Text::new(
        "Сервер останавливается; повторите через минуту.",
        "The server is shutting down; try again in a minute.",
    ))
}
