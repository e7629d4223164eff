import React from "react";
import { hubspot } from "@hubspot/ui-extensions";
import { BoardCardView } from "./BoardCardView";
import { cardUrl, localeOf, type CardData } from "./cardData";
import { SERVICE_BASE_URL } from "./config";

// The deal record's board card: one section per board account connected to the portal.
hubspot.extend<"crm.record.sidebar">(({ context }) => {
  const locale = localeOf(context.user.locale);
  const dealId = context.crm.objectId;
  const get = async (url: string, method: "GET" | "POST"): Promise<CardData> => {
    const response = await hubspot.fetch(url, { method, timeout: 5000 });
    if (!response.ok) {
      throw new Error(`board card: ${response.status}`);
    }
    return (await response.json()) as CardData;
  };
  return (
    <BoardCardView
      locale={locale}
      load={() => get(cardUrl(SERVICE_BASE_URL, dealId, locale), "GET")}
      resync={(accountId) => get(cardUrl(SERVICE_BASE_URL, dealId, locale, accountId), "POST")}
    />
  );
});
