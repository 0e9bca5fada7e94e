//! Organizations and terminal groups (B.4), the menu (nomenclature) and the halls with their tables.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, check_organizations, parse};
use crate::sim::cloud::snapshot::number;
use crate::sim::cloud::state::Inner;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationsRequest {
    organization_ids: Option<Vec<String>>,
    return_additional_info: Option<bool>,
}

pub(super) fn organizations(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: OrganizationsRequest = parse(body)?;
    let extended = request.return_additional_info.unwrap_or(false);
    let organizations: Vec<Value> = inner
        .organizations
        .iter()
        .filter(|org| {
            request
                .organization_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&org.id))
        })
        .map(|org| {
            if !extended {
                return json!({"responseType": "Simple", "id": org.id, "name": org.name, "code": null,
                              "externalData": null});
            }
            json!({
                "responseType": "Extended",
                "id": org.id,
                "name": org.name,
                "code": null,
                "externalData": null,
                "country": "Россия",
                "restaurantAddress": "Москва, Тверская, 1",
                "latitude": 55.7558,
                "longitude": 37.6173,
                "useUaeAddressingSystem": false,
                "version": "9.1.6019.0",
                "currencyIsoName": "RUB",
                "currencyMinimumDenomination": 0.01,
                "countryPhoneCode": "7",
                "marketingSourceRequiredInDelivery": false,
                "defaultDeliveryCityId": null,
                "deliveryCityIds": null,
                "deliveryServiceType": "CourierAndPickup",
                "defaultCallCenterPaymentTypeId": null,
                "orderItemCommentEnabled": true,
                "inn": "7700000000",
                "addressFormatType": "Legacy",
                "isConfirmationEnabled": false,
                "confirmAllowedIntervalInMinutes": 0,
                "isCloud": false,
                "isAnonymousGuestsAllowed": true,
                "addressLookup": [],
            })
        })
        .collect();
    Ok(json!({"organizations": organizations}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerminalGroupsRequest {
    organization_ids: Vec<String>,
}

pub(super) fn terminal_groups(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: TerminalGroupsRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    let groups: Vec<Value> = request
        .organization_ids
        .iter()
        .map(|org| {
            let items: Vec<Value> = inner
                .terminal_groups
                .iter()
                .filter(|group| &group.organization == org)
                .map(|group| {
                    json!({
                        "id": group.id,
                        "organizationId": group.organization,
                        "name": group.name,
                        "address": "",
                        "timeZone": group.time_zone,
                        "externalData": null,
                    })
                })
                .collect();
            json!({"organizationId": org, "items": items})
        })
        .collect();
    let asleep: Vec<Value> = request
        .organization_ids
        .iter()
        .map(|org| json!({"organizationId": org, "items": []}))
        .collect();
    Ok(json!({"terminalGroups": groups, "terminalGroupsInSleep": asleep}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IsAliveRequest {
    organization_ids: Vec<String>,
    terminal_group_ids: Vec<String>,
}

pub(super) fn is_alive(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: IsAliveRequest = parse(body)?;
    check_organizations(inner, &request.organization_ids)?;
    let statuses: Vec<Value> = inner
        .terminal_groups
        .iter()
        .filter(|group| {
            request.terminal_group_ids.contains(&group.id)
                && request.organization_ids.contains(&group.organization)
        })
        .map(|group| {
            json!({"isAlive": true, "terminalGroupId": group.id, "organizationId": group.organization})
        })
        .collect();
    Ok(json!({"isAliveStatus": statuses}))
}

// Menu and tables.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NomenclatureRequest {
    organization_id: String,
    start_revision: Option<i64>,
}

/// The products of the organization, or none when `startRevision` is the current revision already.
pub(super) fn nomenclature(inner: &mut Inner, _: &str, body: &[u8]) -> Result<Value, ApiError> {
    let request: NomenclatureRequest = parse(body)?;
    check_organizations(inner, std::slice::from_ref(&request.organization_id))?;
    let revision = inner.menu_revision;
    let current = request.start_revision.unwrap_or(0) >= revision;
    let products: Vec<Value> = inner
        .products
        .iter()
        .filter(|product| !current && product.organization == request.organization_id)
        .map(|product| {
            json!({
                "fatAmount": null, "proteinsAmount": null, "carbohydratesAmount": null, "energyAmount": null,
                "fatFullAmount": null, "proteinsFullAmount": null, "carbohydratesFullAmount": null,
                "energyFullAmount": null, "weight": null, "groupId": null, "productCategoryId": null,
                "type": "Dish",
                "orderItemType": "Product",
                "modifierSchemaId": null, "modifierSchemaName": null, "splittable": false,
                "measureUnit": "порц",
                "sizePrices": [{"sizeId": null, "price": {
                    "currentPrice": number(product.price), "isIncludedInMenu": true, "nextPrice": null,
                    "nextIncludedInMenu": false, "nextDatePrice": null}}],
                "modifiers": [], "groupModifiers": [], "imageLinks": [], "doNotPrintInCheque": false,
                "parentGroup": null, "order": 0, "fullNameEnglish": "", "useBalanceForSell": false,
                "canSetOpenPrice": false, "paymentSubject": null,
                "id": product.id,
                "code": product.code,
                "name": product.name,
                "description": "", "additionalInfo": null, "tags": null, "isDeleted": false,
                "seoDescription": null, "seoText": null, "seoKeywords": null, "seoTitle": null,
            })
        })
        .collect();
    Ok(json!({
        "groups": [],
        "productCategories": [],
        "products": products,
        "sizes": [],
        "revision": revision,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SectionsRequest {
    terminal_group_ids: Vec<String>,
}

/// One hall per terminal group, holding its organization's tables: how a client maps table ids to numbers.
pub(super) fn restaurant_sections(
    inner: &mut Inner,
    _: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: SectionsRequest = parse(body)?;
    let sections: Vec<Value> = inner
        .terminal_groups
        .iter()
        .filter(|group| request.terminal_group_ids.contains(&group.id))
        .map(|group| {
            let tables: Vec<Value> = inner
                .tables
                .iter()
                .filter(|table| table.organization == group.organization)
                .map(|table| {
                    json!({"id": table.id, "number": table.number, "name": format!("Стол {}", table.number),
                           "seatingCapacity": 4, "revision": 0, "isDeleted": false, "posId": null})
                })
                .collect();
            json!({"id": group.section, "terminalGroupId": group.id, "name": "Зал", "tables": tables,
                   "schema": null})
        })
        .collect();
    Ok(json!({"restaurantSections": sections, "revision": 0}))
}
