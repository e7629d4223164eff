import React, { useCallback, useEffect, useState } from "react";
import {
  Button,
  DescriptionList,
  DescriptionListItem,
  Divider,
  EmptyState,
  ErrorState,
  Flex,
  Heading,
  Link,
  LoadingSpinner,
  Tag,
  Text,
} from "@hubspot/ui-extensions";
import { MESSAGES, type CardData, type CardSection, type Locale } from "./cardData";

export interface BoardCardViewProps {
  locale: Locale;
  /** Loads the card's data (hubspot.fetch in HubSpot, a fake in tests). */
  load: () => Promise<CardData>;
  /** Runs 「今すぐ同期」 for one board account and returns the fresh data. */
  resync: (accountId: string) => Promise<CardData>;
}

type ViewState =
  | { status: "loading" }
  | { status: "error" }
  | { status: "ready"; card: CardData; busy?: string; failed?: string };

const TAG_VARIANT: Record<CardSection["state"], "success" | "warning" | "default" | "error"> = {
  project: "success",
  draft: "warning",
  linked_elsewhere: "default",
  not_in_board: "default",
};

export function BoardCardView({ locale, load, resync }: BoardCardViewProps) {
  const t = MESSAGES[locale];
  const [state, setState] = useState<ViewState>({ status: "loading" });

  const reload = useCallback(() => {
    setState({ status: "loading" });
    load()
      .then((card) => setState({ status: "ready", card }))
      .catch(() => setState({ status: "error" }));
  }, [load]);

  useEffect(reload, [reload]);

  if (state.status === "loading") {
    return <LoadingSpinner label={t.loading} layout="centered" />;
  }
  if (state.status === "error") {
    return (
      <ErrorState title={t.errorTitle}>
        <Text>{t.errorBody}</Text>
        <Button onClick={reload}>{t.retry}</Button>
      </ErrorState>
    );
  }
  const { card } = state;
  if (card.sections.length === 0) {
    return (
      <EmptyState title={t.emptyTitle} layout="vertical">
        <Text>{t.empty}</Text>
      </EmptyState>
    );
  }

  const runResync = (accountId: string) => {
    setState({ status: "ready", card, busy: accountId });
    resync(accountId)
      .then((fresh) => setState({ status: "ready", card: fresh }))
      .catch(() => setState({ status: "ready", card, failed: accountId }));
  };

  return (
    <Flex direction="column" gap="medium">
      {card.sections.map((section, index) => (
        <Flex direction="column" gap="small" key={section.account_id}>
          {index > 0 && <Divider />}
          <Flex direction="row" gap="small" align="center">
            <Heading>{section.account_label}</Heading>
            <Tag variant={TAG_VARIANT[section.state]}>{t[section.state]}</Tag>
          </Flex>
          {section.title && <Text format={{ fontWeight: "bold" }}>{section.title}</Text>}
          {section.properties.length > 0 && (
            <DescriptionList direction="column">
              {section.properties.map((property) => (
                <DescriptionListItem label={property.label} key={property.label}>
                  <Text>{property.value}</Text>
                </DescriptionListItem>
              ))}
            </DescriptionList>
          )}
          {section.reason && <Text variant="microcopy">{section.reason}</Text>}
          <Flex direction="row" gap="small">
            {section.board_url && <Link href={section.board_url}>{t.open}</Link>}
            {(section.state === "project" || section.state === "draft") && (
              <Button
                size="xs"
                disabled={state.busy === section.account_id}
                onClick={() => runResync(section.account_id)}
              >
                {state.busy === section.account_id ? t.resyncing : t.resync}
              </Button>
            )}
          </Flex>
          {state.failed === section.account_id && <Text variant="microcopy">{t.resyncFailed}</Text>}
        </Flex>
      ))}
    </Flex>
  );
}
