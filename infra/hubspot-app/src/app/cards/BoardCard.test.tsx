import React from "react";
import { Button, EmptyState, ErrorState, Heading, Link, LoadingSpinner, Tag, Text } from "@hubspot/ui-extensions";
import { createRenderer } from "@hubspot/ui-extensions/testing";
import { BoardCardView } from "./BoardCardView";
import { cardUrl, localeOf, type CardData } from "./cardData";

const twoAccounts: CardData = {
  sections: [
    {
      account_id: "acct-a",
      account_label: "A事業部",
      state: "project",
      title: "1 基幹システム刷新",
      properties: [
        { label: "受注ステータス", value: "受注確定" },
        { label: "金額", value: "¥1,200,000" },
      ],
      board_url: "https://app.the-board.jp/projects/1",
      sync_enabled: true,
      reason: null,
    },
    {
      account_id: "acct-b",
      account_label: "B事業部",
      state: "linked_elsewhere",
      title: null,
      properties: [],
      board_url: null,
      sync_enabled: false,
      reason: "他のboardアカウント(A事業部)と連携済み",
    },
  ],
};

const never = () => new Promise<CardData>(() => undefined);

describe("the board card", () => {
  test("shows a spinner while loading", () => {
    const { render, find } = createRenderer("crm.record.sidebar");
    render(<BoardCardView locale="ja" load={never} resync={never} />);
    expect(find(LoadingSpinner).props.label).toEqual("boardの情報を読み込んでいます");
  });

  test("renders one labelled block per board account", async () => {
    const { render, find, findAll, waitFor } = createRenderer("crm.record.sidebar");
    render(<BoardCardView locale="ja" load={async () => twoAccounts} resync={never} />);
    await waitFor(() => expect(findAll(Heading)).toHaveLength(2));
    expect(findAll(Heading).map((h) => h.text)).toEqual(["A事業部", "B事業部"]);
    expect(findAll(Tag).map((t) => t.text)).toEqual(["案件", "他のアカウントで連携"]);
    expect(find(Link).props.href).toEqual("https://app.the-board.jp/projects/1");
    expect(findAll(Button).map((b) => b.text)).toEqual(["今すぐ同期"]);
    expect(findAll(Text).some((t) => t.text === "他のboardアカウント(A事業部)と連携済み")).toBe(true);
  });

  test("the resync button runs 今すぐ同期 for its account and shows the fresh data", async () => {
    const { render, find, findAll, waitFor } = createRenderer("crm.record.sidebar");
    const calls: string[] = [];
    const fresh: CardData = {
      sections: [{ ...twoAccounts.sections[0], title: "1 基幹システム刷新(改)" }, twoAccounts.sections[1]],
    };
    render(
      <BoardCardView
        locale="ja"
        load={async () => twoAccounts}
        resync={async (account) => {
          calls.push(account);
          return fresh;
        }}
      />,
    );
    await waitFor(() => expect(findAll(Button)).toHaveLength(1));
    find(Button).trigger("onClick");
    await waitFor(() => expect(findAll(Text).some((t) => t.text === "1 基幹システム刷新(改)")).toBe(true));
    expect(calls).toEqual(["acct-a"]);
  });

  test("an unavailable service shows an error state with a retry", async () => {
    const { render, find, waitFor } = createRenderer("crm.record.sidebar");
    render(<BoardCardView locale="en" load={() => Promise.reject(new Error("503"))} resync={never} />);
    await waitFor(() => expect(find(ErrorState).props.title).toEqual("board data is unavailable"));
    expect(find(Button).text).toEqual("Reload");
  });

  test("a portal without board accounts shows an empty state", async () => {
    const { render, find, waitFor } = createRenderer("crm.record.sidebar");
    render(<BoardCardView locale="ja" load={async () => ({ sections: [] })} resync={never} />);
    await waitFor(() => expect(find(EmptyState).props.title).toEqual("boardと未連携"));
  });

  test("the URL carries the deal and locale, never the identity HubSpot appends", () => {
    expect(cardUrl("https://svc", 42, "en")).toEqual(
      "https://svc/hubspot/card?objectId=42&objectType=DEAL&locale=en",
    );
    const resync = cardUrl("https://svc", 42, "ja", "acct-a");
    expect(resync).toContain("/hubspot/card/resync?");
    expect(resync).toContain("boardAccountId=acct-a");
    for (const appended of ["portalId=", "userId=", "appId=", "accountId="]) {
      expect(resync.replace("boardAccountId=", "")).not.toContain(appended);
    }
    expect(localeOf("en-us")).toEqual("en");
    expect(localeOf("ja-jp")).toEqual("ja");
    expect(localeOf(undefined)).toEqual("ja");
  });
});
