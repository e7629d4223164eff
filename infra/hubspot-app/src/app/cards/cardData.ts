// The shape `GET /hubspot/card` answers (ARCHITECTURE.md, contract).

export type SectionState = "project" | "draft" | "linked_elsewhere" | "not_in_board";

export interface CardProperty {
  label: string;
  value: string;
}

export interface CardSection {
  account_id: string;
  account_label: string;
  state: SectionState;
  title: string | null;
  properties: CardProperty[];
  board_url: string | null;
  sync_enabled: boolean;
  reason: string | null;
}

export interface CardData {
  sections: CardSection[];
}

export type Locale = "ja" | "en";

/** The card's words; section contents come localised from the service. */
export const MESSAGES: Record<Locale, Record<string, string>> = {
  ja: {
    loading: "boardの情報を読み込んでいます",
    errorTitle: "boardの情報を表示できません",
    errorBody: "時間をおいて再度お試しください。",
    retry: "再読み込み",
    empty: "このHubSpotアカウントと連携しているboardアカウントはありません。",
    emptyTitle: "boardと未連携",
    resync: "今すぐ同期",
    resyncing: "同期しています",
    resyncFailed: "今すぐ同期できませんでした",
    open: "boardで開く",
    project: "案件",
    draft: "下書き案件",
    linked_elsewhere: "他のアカウントで連携",
    not_in_board: "boardにありません",
  },
  en: {
    loading: "Loading board data",
    errorTitle: "board data is unavailable",
    errorBody: "Please try again later.",
    retry: "Reload",
    empty: "No board account is connected to this HubSpot account.",
    emptyTitle: "Not connected to board",
    resync: "Sync now",
    resyncing: "Syncing",
    resyncFailed: "Sync failed",
    open: "Open in board",
    project: "Project",
    draft: "Draft project",
    linked_elsewhere: "Linked in another account",
    not_in_board: "Not in board",
  },
};

export function localeOf(raw: string | undefined): Locale {
  return raw && raw.toLowerCase().startsWith("en") ? "en" : "ja";
}

/**
 * The card's query: the deal, the locale and, for a resync, the board account.
 * Never the portal or the user: HubSpot's proxy appends `portalId`, `userId`,
 * `userEmail` and `appId` itself and signs the whole URL, and the service takes
 * identity only from those (it refuses a request naming one of them twice).
 */
export function cardUrl(base: string, dealId: number | string, locale: Locale, boardAccountId?: string): string {
  const path = boardAccountId === undefined ? "/hubspot/card" : "/hubspot/card/resync";
  const params = new URLSearchParams({ objectId: String(dealId), objectType: "DEAL", locale });
  if (boardAccountId !== undefined) {
    params.set("boardAccountId", boardAccountId);
  }
  return `${base}${path}?${params.toString()}`;
}
