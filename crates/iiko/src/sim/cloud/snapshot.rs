//! How the API shows an order: `TableOrderInfo` (B.6) and `OrderInfo` (B.5) with their items (B.5), in the
//! terminal group's local time, money and amounts as JSON numbers.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::state::{Inner, Item, Kind, Order};
use super::zones;

/// Fixed ids of the things every order refers to but the sim does not model.
const WAITER_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000001";
const COMMON_ORDER_TYPE_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000002";
const COURIER_ORDER_TYPE_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000003";
const CASH_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000004";
const REMOVAL_TYPE_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000005";
const CANCEL_CAUSE_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000006";
const CITY_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000007";
const STREET_ID: &str = "5e0d1c2a-7a34-4d5b-9c61-000000000008";

impl Inner {
    fn time_zone(&self, terminal_group: &str) -> &str {
        self.terminal_group(terminal_group)
            .map_or("UTC", |group| group.time_zone.as_str())
    }

    /// `at` in the terminal group's local time, as iikoCloud writes it.
    pub fn local_text(&self, terminal_group: &str, at: DateTime<Utc>) -> String {
        zones::format(self.local(terminal_group, at))
    }

    /// `at` as the terminal group's wall clock shows it, for date filters.
    pub fn local(&self, terminal_group: &str, at: DateTime<Utc>) -> NaiveDateTime {
        zones::local(at, self.time_zone(terminal_group))
    }

    /// `completeBefore` of a delivery: an hour after it was created, as for an ASAP order.
    pub fn complete_before(order: &Order) -> DateTime<Utc> {
        order.created + TimeDelta::hours(1)
    }

    /// The order as the API answers it now: `TableOrderInfo` (B.6) or `OrderInfo` (B.5).
    pub fn snapshot(&self, order: &Order) -> Value {
        let local = |at: DateTime<Utc>| self.local_text(&order.terminal_group, at);
        let time = |field: &str| order.times.get(field).map(|at| local(*at));
        // Saturating: prices and amounts come from scripts too, and a silly one must not panic.
        let cost = |item: &Item| item.price.saturating_mul(item.amount);
        let sum = order
            .items
            .iter()
            .filter(|item| item.deleted.is_none())
            .fold(Decimal::ZERO, |sum, item| sum.saturating_add(cost(item)));
        let items: Vec<Value> = order
            .items
            .iter()
            .map(|item| {
                let cost = number(cost(item));
                json!({
                    "type": "Product",
                    "product": {"id": item.product_id, "name": item.product_name},
                    "modifiers": [],
                    "codes": null,
                    "price": number(item.price),
                    "cost": cost,
                    "pricePredefined": false,
                    "positionId": item.position_id,
                    "taxPercent": null,
                    "resultSum": cost,
                    "status": item.status,
                    "deleted": item.deleted.as_ref().map(|id| json!({"deletionMethod": {
                        "id": id,
                        "comment": "",
                        "removalType": {"id": REMOVAL_TYPE_ID, "name": "Без списания"},
                    }})),
                    "amount": number(item.amount),
                    "comment": null,
                    "whenPrinted": item.printed.map(local),
                    "size": null,
                    "comboInformation": null,
                })
            })
            .collect();
        let closed = order.status == "Closed";
        let payments = if order.kind == Kind::Delivery || closed {
            json!([{
                "paymentType": {"id": CASH_ID, "name": "Наличные", "kind": "Cash"},
                "sum": number(sum),
                "isPreliminary": !closed,
                "isExternal": false,
                "isProcessedExternally": false,
                "isFiscalizedExternally": false,
                "isPrepay": false,
            }])
        } else {
            json!([])
        };
        let processed = number(if closed { sum } else { Decimal::ZERO });
        let body = match order.kind {
            Kind::Table => json!({
                "tableIds": order.tables,
                "customer": null,
                "phone": null,
                "status": order.status,
                "whenCreated": local(order.created),
                "waiter": {"id": WAITER_ID, "name": "Официант", "phone": null},
                "tabName": null,
                "splitOrderBetweenCashRegisters": "Disabled",
                "menuId": null,
                "priceCategory": null,
                "sum": number(sum),
                "number": order.number,
                "sourceKey": null,
                "whenBillPrinted": time("whenBillPrinted"),
                "whenClosed": time("whenClosed"),
                "conception": null,
                "guestsInfo": {"count": 1, "splitBetweenPersons": false},
                "items": items,
                "combos": [],
                "payments": payments,
                "tips": [],
                "discounts": [],
                "orderType": {"id": COMMON_ORDER_TYPE_ID, "name": "Обычный заказ", "orderServiceType": "Common"},
                "terminalGroupId": order.terminal_group,
                "processedPaymentsSum": processed,
                "loyaltyInfo": {"coupon": null, "appliedManualConditions": null},
                "externalData": null,
            }),
            Kind::Delivery => {
                let mut head = json!({
                    "parentDeliveryId": null,
                    "customer": {"type": "regular", "id": order.customer, "name": "Гость", "surname": null,
                                 "comment": null, "gender": "NotSpecified", "inBlacklist": false,
                                 "blacklistReason": null, "birthdate": null},
                    "phone": "+79990000000",
                    "phoneExtension": null,
                    "deliveryPoint": {
                        "coordinates": {"latitude": 55.7558, "longitude": 37.6173},
                        "address": {"street": {"id": STREET_ID, "name": "Тверская",
                                               "city": {"id": CITY_ID, "name": "Москва"}},
                                    "index": null, "house": "1", "building": null, "flat": "5", "entrance": "2",
                                    "floor": "3", "doorphone": null, "region": null, "line1": null},
                        "externalCartographyId": null,
                        "comment": null,
                    },
                    "status": order.status,
                    "cancelInfo": order.times.get("whenCancelled").filter(|_| order.status == "Cancelled").map(|at| json!({
                        "whenCancelled": local(*at),
                        "cause": {"id": CANCEL_CAUSE_ID, "name": "Отказ гостя"},
                        "comment": null,
                    })),
                    "courierInfo": null,
                    "completeBefore": local(Self::complete_before(order)),
                    "whenCreated": local(order.created),
                    "whenConfirmed": time("whenConfirmed"),
                    "whenPrinted": null,
                    "whenCookingCompleted": time("whenCookingCompleted"),
                    "whenSended": time("whenSended"),
                    "whenDelivered": time("whenDelivered"),
                    "whenPacked": time("whenPacked"),
                    "comment": null,
                    "problem": {"hasProblem": false, "description": null},
                    "operator": null,
                    "marketingSource": null,
                    "deliveryDuration": 60,
                    "indexInCourierRoute": null,
                    "cookingStartTime": local(order.created),
                    "isDeleted": false,
                    "whenReceivedByApi": zones::format(order.created.naive_utc()),
                    "whenReceivedFromFront": zones::format(order.created.naive_utc()),
                });
                // In two parts: one `json!` this long outgrows the macro recursion limit.
                let tail = json!({
                    "movedFromDeliveryId": null,
                    "movedFromTerminalGroupId": null,
                    "movedFromOrganizationId": null,
                    "movedToDeliveryId": null,
                    "movedToTerminalGroupId": null,
                    "movedToOrganizationId": null,
                    "externalCourierService": null,
                    "menuId": null,
                    "deliveryZone": null,
                    "lockedAt": null,
                    "estimatedTime": null,
                    "isAsap": true,
                    "priceCategory": null,
                    "trackingLink": null,
                    "sum": number(sum),
                    "number": order.number,
                    "sourceKey": null,
                    "whenBillPrinted": null,
                    "whenClosed": time("whenClosed"),
                    "conception": null,
                    "guestsInfo": {"count": 1, "splitBetweenPersons": false},
                    "items": items,
                    "combos": [],
                    "payments": payments,
                    "tips": [],
                    "discounts": [],
                    "orderType": {"id": COURIER_ORDER_TYPE_ID, "name": "Доставка курьером",
                                  "orderServiceType": "DeliveryByCourier"},
                    "terminalGroupId": order.terminal_group,
                    "processedPaymentsSum": processed,
                    "loyaltyInfo": {"coupon": null, "appliedManualConditions": null, "dynamicDiscounts": null},
                    "externalData": null,
                });
                if let (Value::Object(head), Value::Object(tail)) = (&mut head, tail) {
                    head.extend(tail);
                }
                head
            }
        };
        json!({
            "id": order.id,
            "posId": order.pos_id,
            "externalNumber": null,
            "organizationId": order.organization,
            "timestamp": order.timestamp,
            "creationStatus": "Success",
            "errorInfo": null,
            "order": body,
        })
    }
}

/// A JSON number as iikoCloud sends money and amounts: whole values as integers, others as the shortest double
/// that reads back as the same decimal (280.5, 0.5).
pub(super) fn number(value: Decimal) -> Value {
    let value = value.normalize();
    if value.scale() == 0
        && let Ok(whole) = i64::try_from(value)
    {
        return Value::from(whole);
    }
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}
