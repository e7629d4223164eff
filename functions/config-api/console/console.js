// The admin console: one page over the config and business API (/v1/hubspot/...).
// Plain JavaScript, no build step, no inline code (the page's CSP forbids it).
// Every value from the API is written as text (textContent), never as HTML:
// deal names come from any HubSpot user.
'use strict';

(() => {
  const TOKEN_KEY = 'board-hubspot.console.token';
  const LANG_KEY = 'board-hubspot.console.lang';

  // ---------------------------------------------------------------- words
  const WORDS = {
    ja: {
      title: 'HubSpot連携 管理コンソール',
      skip: '本文へ移動',
      menu: 'メニュー',
      loading: '読み込み中…',
      signIn: 'ログイン',
      signInLead: '開発用のサインインです。boardアカウントと権限を選ぶと、その利用者として操作できます。',
      signInProd: 'boardの画面から開いてください。boardがこの画面に利用者のトークンを渡します。',
      signInButton: 'サインイン',
      signOut: 'ログアウト',
      tokenLabel: 'トークン(board発行のJWT)',
      useToken: 'このトークンを使う',
      account: 'boardアカウント',
      role: '権限',
      userId: 'boardユーザーID',
      'nav.connection': '連携設定',
      'nav.mapping': 'ステージ対応',
      'nav.rules': '連携条件',
      'nav.drafts': '下書き案件',
      'nav.history': '連携履歴',
      'nav.errors': 'エラー集計',
      'nav.budget': 'API使用量',
      'nav.diagnosis': '取引の診断',
      'nav.links': 'レコードの連携',
      'nav.matching': '既存データの照合',
      matchingLead: '連携を始める前からあるboardの顧客・顧客担当者と、HubSpotの会社・コンタクトを照合し、対応の候補を示します。照合も承認もboardとHubSpotのデータは書き換えません(承認で連携が作られ、違う項目は次の変更で同期されます)。',
      startMatching: '照合を開始',
      matchingState: '照合の状態',
      'mstate.running': '実行中',
      'mstate.done': '完了',
      'mstate.failed': '失敗',
      phase: '段階',
      read: '読み込んだ件数',
      timeLeft: '残り時間(目安)',
      seconds: '{0}秒',
      'group.sure': '確実',
      'group.ambiguous': '候補が複数',
      'group.none': '候補なし',
      boardRecord: 'boardのレコード',
      candidates: 'HubSpotの候補',
      confidence: '確からしさ',
      approveSure: '確実な候補をすべて承認',
      approveSelected: '選択した候補を承認',
      approvedResult: '{0}件を連携しました(連携済み {1}件、対象外 {2}件)',
      approved: '承認済み',
      undoApproval: 'この承認を取り消す',
      undoneResult: '{0}件の連携を取り消しました(同期済みのため残した連携 {1}件)',
      differs: '値が違う項目(承認後の次の変更で同期)',
      'field.name': '名前',
      'field.email': 'メールアドレス',
      'field.domain': 'ドメイン',
      'field.phone': '電話番号',
      'field.address': '住所',
      noMatching: 'まだ照合していません。',
      dealsTitle: '既存の取引',
      dealsLead: '連携前からあるHubSpotの取引のうち、連携条件を満たすものを下書きにします。まず件数を確認してから実行してください(受注ステータスの対応を先に設定します)。',
      modifiedSince: 'この日以降に更新された取引だけ(任意)',
      previewDeals: '件数を確認',
      runDeals: '下書きを作成',
      'counts.read': '読み込んだ取引',
      'counts.older': '指定日より前',
      'counts.linked': '連携済み',
      'counts.qualifying': '条件を満たす',
      'counts.already_drafts': 'うち下書きあり',
      'counts.not_qualifying': '条件を満たさない',
      'bmode.preview': '件数の確認',
      'bmode.run': '下書きの作成',
      settingsAbsent: '連携設定・ステージ対応・連携条件・連携履歴などの設定画面は、HubSpot連携の設定権限を持つ利用者(マスター・管理者、または権限を付与されたカスタム権限)だけが利用できます。',
      forbidden: 'この操作を行う権限がありません。',
      save: '保存',
      saved: '保存しました',
      cancel: 'キャンセル',
      refresh: '再読み込み',
      more: 'さらに表示',
      none: 'なし',
      yes: 'はい',
      no: 'いいえ',
      // connection
      state: '状態',
      'state.not_connected': '未連携',
      'state.pending': '確定待ち',
      'state.active': '連携中',
      'state.suspended': '停止中',
      'state.disconnected': '連携解除済み',
      'state.uninstalled': 'アンインストール済み',
      portal: 'HubSpotアカウント(ポータルID)',
      authorizedBy: '接続したHubSpotユーザー',
      scopes: '許可された範囲(スコープ)',
      connectedAt: '接続日時',
      lastWebhook: '最後にHubSpotから通知を受けた日時',
      lastSyncToBoard: '最後の同期 HubSpot → board',
      lastSyncToHubspot: '最後の同期 board → HubSpot',
      authFailures: '連続した認証エラー',
      otherAccounts: '同じHubSpotアカウントを使う他のboardアカウント',
      paused: 'HubSpotへのバックグラウンド処理を一時停止中',
      checklist: '設定の確認',
      connect: 'HubSpotと連携',
      connectLead: 'HubSpot連携機能は、HubSpotのStarterプラン以上で利用可能です。接続はHubSpotのスーパー管理者が行うことを推奨します。',
      confirmLead: 'HubSpotでの接続が完了しました。連携を有効にするには確定してください。',
      confirm: '連携を確定',
      archivePrevious: '以前のHubSpotアカウントとの連携を解除して、このHubSpotアカウントに切り替える',
      resyncAll: '今すぐ同期(HubSpotの変更を取り込む)',
      resyncQueued: '同期を開始しました',
      disconnect: '連携を解除',
      disconnectLead: '連携を解除すると、HubSpotとboardの同期が止まります。設定と連携済みレコードの対応は残り、再接続すると再開できます。',
      disconnectDo: '解除する',
      uninstall: 'アプリをアンインストール',
      uninstallLead: 'HubSpotからアプリをアンインストールします。同じHubSpotアカウントを他のboardアカウントが使っている場合はアンインストールできません。',
      uninstallDo: 'アンインストールする',
      disconnected: '連携を解除しました',
      uninstalled: 'アプリをアンインストールしました',
      oauthError: 'HubSpotとの接続に失敗しました',
      // mapping
      mappingLead: 'HubSpotのパイプラインのステージごとに、boardの受注ステータスを選びます。未設定のステージの取引はboardに連携されません。変更は次にHubSpotで取引が変わったときから適用されます(過去の取引はさかのぼって変わりません)。',
      stage: 'ステージ',
      orderStatus: '受注ステータス',
      unmapped: '未設定',
      applySuggestion: 'おすすめの対応を入れる',
      problems: '確認が必要な点',
      'problem.stage_unmapped': 'ステージ「{0}」に受注ステータスが設定されていません。',
      'problem.stage_missing': 'HubSpotから削除されたステージ「{0}」の対応が残っています。',
      'problem.pipeline_missing': 'HubSpotから削除されたパイプライン「{0}」の対応が残っています。',
      // rules
      rulesLead: '取引フィルタールール: いずれかのルールのすべての条件を満たす取引だけがboardに連携されます。ルールがなければすべての取引が対象です。',
      rule: 'ルール {0}',
      ruleOr: 'または',
      condition: '条件',
      field: '項目',
      'field.team': 'チーム',
      'field.owner': '取引担当者',
      'field.filter_key': 'フィルター用識別子',
      values: '値(いずれか)',
      addCondition: '条件を追加',
      addRule: 'ルールを追加',
      removeRule: 'このルールを削除',
      removeCondition: 'この条件を削除',
      noRules: 'ルールはありません(すべての取引が対象)',
      accountLabel: 'HubSpotアカウント識別ラベル',
      accountLabelLead: 'CRMカードで連携先のboardアカウントを見分けるための表示名です(50文字まで)。',
      // drafts
      draftsLead: 'HubSpotの取引のうち、連携条件を満たしboardにまだ登録されていないものです。',
      'draft.open': '下書き',
      'draft.withdrawn': '対象外',
      'draft.discarded': '破棄済み',
      'draft.registered': '登録済み',
      search: '検索',
      searchDeals: '案件名で検索',
      dealName: '案件名',
      amount: '金額',
      closeDate: '受注日(予定)',
      updatedAt: '更新日時',
      reason: '理由',
      companies: '会社',
      contacts: 'コンタクト',
      discard: '破棄',
      restore: '下書きに戻す',
      register: 'boardに登録',
      registerTitle: 'boardに案件として登録',
      customer: '顧客',
      createFrom: '会社「{0}」から新しい顧客を作成',
      createFromContact: '取引のコンタクトから新しい顧客を作成',
      'suggest.linked': '連携済み',
      'suggest.same_name': '同じ名前',
      'suggest.same_phone': '同じ電話番号',
      'suggest.create_from_company': '新規作成',
      projectOwner: '担当者(boardユーザー)',
      invoiceTiming: '請求タイミング',
      'timing.1': '一括',
      'timing.2': '定期',
      'timing.3': '分割',
      invoiceDate: '請求日',
      contractStart: '契約開始日',
      contractEnd: '契約終了日',
      invoiceDates: '請求日(カンマ区切り)',
      registered: 'boardに登録しました(案件ID {0})',
      back: '一覧に戻る',
      // history
      historyLead: 'HubSpotとboardの間の同期の記録です。エラーの行から原因と対処を確認し、再実行できます。',
      direction: '方向',
      'direction.hubspot_to_board': 'HubSpot → board',
      'direction.board_to_hubspot': 'board → HubSpot',
      status: '結果',
      'status.success': '成功',
      'status.skip': 'スキップ',
      'status.error': 'エラー',
      code: 'コード',
      objectType: '対象',
      'object.deal': '取引',
      'object.company': '会社',
      'object.contact': 'コンタクト',
      'object.project': '案件',
      'object.customer': '顧客',
      'object.customer_contact': '顧客担当者',
      from: '開始日',
      to: '終了日',
      any: 'すべて',
      occurredAt: '日時',
      message: '内容',
      guidance: '対処',
      detail: '詳細',
      warnings: '注意',
      retry: '再実行',
      retried: '再実行しました',
      entry: '履歴の詳細',
      configVersion: '設定の版',
      noEntries: '該当する履歴はありません',
      // diagnosis
      diagnosisLead: 'HubSpotの取引IDまたは取引のURLを入れると、連携の条件を一つずつ確かめます。',
      dealIdOrUrl: '取引IDまたはURL',
      diagnose: '診断する',
      qualifies: 'この取引は今boardに連携される',
      notInHubspot: 'HubSpotにこの取引はありません。',
      'gate.status_mapping': '受注ステータスの対応',
      'gate.filter_rules': '連携条件(フィルタールール)',
      'gate.exclusion': 'board連携から除外',
      'gate.claimed_elsewhere': '他のboardアカウントとの連携',
      pass: '通過',
      fail: '不通過',
      link: '連携済みの案件',
      draftNow: '下書き',
      decisions: '最近の判断',
      // links
      linksLead: 'boardの案件・顧客・顧客担当者のHubSpot連携の状態を確かめ、同期を止めたり再開したりできます。',
      kind: '種類',
      boardId: 'boardのID',
      show: '表示',
      syncEnabled: '同期する',
      hubspotId: 'HubSpotのID',
      lastSynced: '最後の同期',
      turnOff: '同期を止める',
      turnOn: '同期を再開',
      resync: '今すぐ同期',
      done: '完了しました',
      // errors dashboard
      errorsLead: '期間内の同期の結果を、エラーコードと対象ごとに数えます。まとめて再実行したり、CSVに書き出したりできます。',
      period: '期間',
      'period.1': '24時間',
      'period.7': '7日間',
      'period.30': '30日間',
      total: '合計',
      byCode: 'コード別',
      count: '件数',
      retryable: '再実行できる件数',
      retryCode: 'このコードをすべて再実行',
      retrySelected: '選択した項目を再実行',
      selectFirst: '再実行する項目を選んでください',
      select: '選択',
      queued: '{0}件の再実行を受け付けました(スキップ {1}件)',
      trend: '推移',
      recentErrors: '最近のエラー',
      exportCsv: 'CSVに書き出す',
      exported: 'CSVを書き出しました({0}バイト)',
      incomplete: '期間内の件数が多いため、新しい方の一部だけを数えています。',
      noErrors: 'この期間にエラーやスキップはありません',
      // budget
      budgetLead: 'HubSpotとboardのAPIの使用状況です。バックグラウンドの同期は各APIの上限の80%まで、残りは画面からの操作に使います。',
      share: '枠',
      inWindow: '使用中',
      limit: '上限',
      windowMs: '期間(ミリ秒)',
      'share.background': 'バックグラウンド(ポータル全体)',
      'share.account': 'このboardアカウントの分',
      'share.interactive': '画面からの操作',
      'share.board': 'boardへのバックグラウンド',
      minute: '分',
      background: 'バックグラウンド',
      accountCalls: 'このアカウント',
      interactive: '画面から',
      rateLimited: '429の回数',
      daily: '1日の上限',
      'daily.ok': '問題なし',
      'daily.limit_reached': '上限に達したため一時停止中',
      heldUntil: 'バックグラウンド処理の停止: {0}まで({1})',
      accountsOnPortal: '同じHubSpotアカウントを使うboardアカウント数',
      notConnectedBudget: 'HubSpotと連携していないため、HubSpotの使用状況はありません。',
      // preview
      preview: '保存前に影響を確認',
      previewLead: '次にHubSpotで取引が変わったときの扱いが変わる取引です(保存するまで何も変わりません)。',
      'effect.newly_qualifying': '新たに連携対象',
      'effect.no_longer_qualifying': '連携対象外になる',
      'effect.status_changed': '受注ステータスが変わる',
      unchanged: '変わらない',
      notInHubspotCount: 'HubSpotにない取引',
      checked: '確認した取引',
      before: '変更前',
      after: '変更後',
      'kind.draft': '下書き',
      'kind.linked': '連携済み',
      noEffect: '影響を受ける取引はありません',
    },
    en: {
      title: 'HubSpot integration console',
      skip: 'Skip to content',
      menu: 'Menu',
      loading: 'Loading…',
      signIn: 'Sign in',
      signInLead: 'Development sign-in: pick a board account and a role to act as that user.',
      signInProd: 'Open this console from board: board hands it your token.',
      signInButton: 'Sign in',
      signOut: 'Sign out',
      tokenLabel: 'Token (board JWT)',
      useToken: 'Use this token',
      account: 'board account',
      role: 'Role',
      userId: 'board user id',
      'nav.connection': 'Connection',
      'nav.mapping': 'Stage mapping',
      'nav.rules': 'Sync conditions',
      'nav.drafts': 'Drafts',
      'nav.history': 'Sync history',
      'nav.errors': 'Errors',
      'nav.budget': 'API usage',
      'nav.diagnosis': 'Deal diagnosis',
      'nav.links': 'Record links',
      'nav.matching': 'Match existing data',
      matchingLead: 'Matches the board customers and contacts that existed before connecting with HubSpot\'s companies and contacts, and proposes links. Neither matching nor approving changes board or HubSpot data (approval creates the links; differing fields sync on the next change).',
      startMatching: 'Start matching',
      matchingState: 'Matching',
      'mstate.running': 'Running',
      'mstate.done': 'Done',
      'mstate.failed': 'Failed',
      phase: 'Phase',
      read: 'Records read',
      timeLeft: 'Time left (estimate)',
      seconds: '{0} s',
      'group.sure': 'Sure',
      'group.ambiguous': 'Several candidates',
      'group.none': 'No candidate',
      boardRecord: 'board record',
      candidates: 'HubSpot candidates',
      confidence: 'Confidence',
      approveSure: 'Approve every sure match',
      approveSelected: 'Approve the selected candidates',
      approvedResult: '{0} linked ({1} already, {2} not linked)',
      approved: 'Approved',
      undoApproval: 'Undo this approval',
      undoneResult: '{0} links removed ({1} kept: synced since)',
      differs: 'Differing fields (sync on the next change after approval)',
      'field.name': 'Name',
      'field.email': 'E-mail',
      'field.domain': 'Domain',
      'field.phone': 'Phone',
      'field.address': 'Address',
      noMatching: 'No matching has run yet.',
      dealsTitle: 'Existing deals',
      dealsLead: 'Makes drafts of the HubSpot deals from before the connection that meet the conditions. Check the counts first, then run (set the stage mapping first).',
      modifiedSince: 'Only deals modified since (optional)',
      previewDeals: 'Count',
      runDeals: 'Create drafts',
      'counts.read': 'Deals read',
      'counts.older': 'Before the date',
      'counts.linked': 'Linked',
      'counts.qualifying': 'Meeting the conditions',
      'counts.already_drafts': 'of which drafts already',
      'counts.not_qualifying': 'Not meeting them',
      'bmode.preview': 'Count',
      'bmode.run': 'Create drafts',
      settingsAbsent: 'The settings screens (connection, stage mapping, conditions, history…) are for users with HubSpot integration settings access (master, admin, or a custom role granted it).',
      forbidden: 'You are not allowed to do this.',
      save: 'Save',
      saved: 'Saved',
      cancel: 'Cancel',
      refresh: 'Reload',
      more: 'Show more',
      none: 'None',
      yes: 'Yes',
      no: 'No',
      state: 'State',
      'state.not_connected': 'Not connected',
      'state.pending': 'Awaiting confirmation',
      'state.active': 'Active',
      'state.suspended': 'Suspended',
      'state.disconnected': 'Disconnected',
      'state.uninstalled': 'Uninstalled',
      portal: 'HubSpot account (portal id)',
      authorizedBy: 'Connected by',
      scopes: 'Scopes',
      connectedAt: 'Connected at',
      lastWebhook: 'Last HubSpot notification',
      lastSyncToBoard: 'Last sync HubSpot → board',
      lastSyncToHubspot: 'Last sync board → HubSpot',
      authFailures: 'Consecutive authentication failures',
      otherAccounts: 'Other board accounts on this HubSpot account',
      paused: 'Background HubSpot work paused',
      checklist: 'Checklist',
      connect: 'Connect HubSpot',
      connectLead: 'The HubSpot integration needs HubSpot Starter or above. We recommend a HubSpot super admin connects.',
      confirmLead: 'HubSpot is connected. Confirm to turn the integration on.',
      confirm: 'Confirm',
      archivePrevious: 'Disconnect the previous HubSpot account and switch to this one',
      resyncAll: 'Sync now (take in HubSpot changes)',
      resyncQueued: 'Sync started',
      disconnect: 'Disconnect',
      disconnectLead: 'Disconnecting stops syncing. Settings and record links are kept; reconnecting resumes.',
      disconnectDo: 'Disconnect',
      uninstall: 'Uninstall the app',
      uninstallLead: 'Uninstalls the app from HubSpot. Not possible while other board accounts use the same HubSpot account.',
      uninstallDo: 'Uninstall',
      disconnected: 'Disconnected',
      uninstalled: 'App uninstalled',
      oauthError: 'Connecting HubSpot failed',
      mappingLead: 'Pick board\'s order status for each stage of each HubSpot pipeline. Deals in unmapped stages are not synced. Changes apply from a deal\'s next HubSpot change (not retroactively).',
      stage: 'Stage',
      orderStatus: 'Order status',
      unmapped: 'Not mapped',
      applySuggestion: 'Fill in the suggestion',
      problems: 'To check',
      'problem.stage_unmapped': 'Stage "{0}" has no order status.',
      'problem.stage_missing': 'A mapping remains for stage "{0}", deleted in HubSpot.',
      'problem.pipeline_missing': 'A mapping remains for pipeline "{0}", deleted in HubSpot.',
      rulesLead: 'Deal filter rules: a deal is synced if it meets every condition of any rule. No rules: every deal.',
      rule: 'Rule {0}',
      ruleOr: 'or',
      condition: 'Condition',
      field: 'Field',
      'field.team': 'Team',
      'field.owner': 'Deal owner',
      'field.filter_key': 'Filter key',
      values: 'Values (any of)',
      addCondition: 'Add condition',
      addRule: 'Add rule',
      removeRule: 'Remove this rule',
      removeCondition: 'Remove this condition',
      noRules: 'No rules (every deal)',
      accountLabel: 'Account label',
      accountLabelLead: 'Shown on the CRM card to tell board accounts apart (up to 50 characters).',
      draftsLead: 'HubSpot deals that meet the conditions and are not yet registered in board.',
      'draft.open': 'Draft',
      'draft.withdrawn': 'Withdrawn',
      'draft.discarded': 'Discarded',
      'draft.registered': 'Registered',
      search: 'Search',
      searchDeals: 'Search deal names',
      dealName: 'Deal name',
      amount: 'Amount',
      closeDate: 'Close date',
      updatedAt: 'Updated',
      reason: 'Reason',
      companies: 'Companies',
      contacts: 'Contacts',
      discard: 'Discard',
      restore: 'Restore',
      register: 'Register in board',
      registerTitle: 'Register as a board project',
      customer: 'Customer',
      createFrom: 'Create a customer from company "{0}"',
      createFromContact: 'Create a customer from the deal\'s contact',
      'suggest.linked': 'linked',
      'suggest.same_name': 'same name',
      'suggest.same_phone': 'same phone',
      'suggest.create_from_company': 'new',
      projectOwner: 'Owner (board user)',
      invoiceTiming: 'Invoice timing',
      'timing.1': 'Lump sum',
      'timing.2': 'Recurring',
      'timing.3': 'Split',
      invoiceDate: 'Invoice date',
      contractStart: 'Contract start',
      contractEnd: 'Contract end',
      invoiceDates: 'Invoice dates (comma separated)',
      registered: 'Registered in board (project {0})',
      back: 'Back to the list',
      historyLead: 'What was synced between HubSpot and board. Open an error for its cause and what to do, and retry it.',
      direction: 'Direction',
      'direction.hubspot_to_board': 'HubSpot → board',
      'direction.board_to_hubspot': 'board → HubSpot',
      status: 'Result',
      'status.success': 'Success',
      'status.skip': 'Skipped',
      'status.error': 'Error',
      code: 'Code',
      objectType: 'Object',
      'object.deal': 'Deal',
      'object.company': 'Company',
      'object.contact': 'Contact',
      'object.project': 'Project',
      'object.customer': 'Customer',
      'object.customer_contact': 'Customer contact',
      from: 'From',
      to: 'To',
      any: 'Any',
      occurredAt: 'Time',
      message: 'Message',
      guidance: 'What to do',
      detail: 'Detail',
      warnings: 'Warnings',
      retry: 'Retry',
      retried: 'Retried',
      entry: 'History entry',
      configVersion: 'Settings version',
      noEntries: 'No entries',
      diagnosisLead: 'Enter a HubSpot deal id or URL to check each sync condition in turn.',
      dealIdOrUrl: 'Deal id or URL',
      diagnose: 'Diagnose',
      qualifies: 'This deal syncs to board now',
      notInHubspot: 'HubSpot has no such deal.',
      'gate.status_mapping': 'Order status mapping',
      'gate.filter_rules': 'Filter rules',
      'gate.exclusion': 'Excluded from board',
      'gate.claimed_elsewhere': 'Linked by another board account',
      pass: 'Pass',
      fail: 'Fail',
      link: 'Linked project',
      draftNow: 'Draft',
      decisions: 'Recent decisions',
      linksLead: 'See a board project, customer or customer contact\'s HubSpot link, and stop or resume its sync.',
      kind: 'Kind',
      boardId: 'board id',
      show: 'Show',
      syncEnabled: 'Synced',
      hubspotId: 'HubSpot id',
      lastSynced: 'Last synced',
      turnOff: 'Stop syncing',
      turnOn: 'Resume syncing',
      resync: 'Sync now',
      done: 'Done',
      errorsLead: 'Sync results over a period, by error code and object. Retry many at once, or export as CSV.',
      period: 'Period',
      'period.1': '24 hours',
      'period.7': '7 days',
      'period.30': '30 days',
      total: 'Total',
      byCode: 'By code',
      count: 'Count',
      retryable: 'Retryable',
      retryCode: 'Retry all of this code',
      retrySelected: 'Retry the selected entries',
      selectFirst: 'Select the entries to retry first',
      select: 'Select',
      queued: '{0} retries queued ({1} skipped)',
      trend: 'Trend',
      recentErrors: 'Recent errors',
      exportCsv: 'Export CSV',
      exported: 'CSV exported ({0} bytes)',
      incomplete: 'The period holds too many entries: the counts are of the newest part.',
      noErrors: 'No errors or skips in this period',
      budgetLead: 'How HubSpot\'s and board\'s APIs are used. Background sync takes up to 80 % of each limit; the rest is for people on the screens.',
      share: 'Share',
      inWindow: 'In use',
      limit: 'Limit',
      windowMs: 'Window (ms)',
      'share.background': 'Background (whole portal)',
      'share.account': 'This board account\'s part',
      'share.interactive': 'People on the screens',
      'share.board': 'Background to board',
      minute: 'Minute',
      background: 'Background',
      accountCalls: 'This account',
      interactive: 'People',
      rateLimited: '429s',
      daily: 'Daily limit',
      'daily.ok': 'OK',
      'daily.limit_reached': 'Reached: background work paused',
      heldUntil: 'Background work paused until {0} ({1})',
      accountsOnPortal: 'board accounts on this HubSpot account',
      notConnectedBudget: 'Not connected to HubSpot: no HubSpot usage.',
      preview: 'Preview before saving',
      previewLead: 'Deals treated differently on their next HubSpot change (nothing changes until you save).',
      'effect.newly_qualifying': 'Newly qualifying',
      'effect.no_longer_qualifying': 'No longer qualifying',
      'effect.status_changed': 'Different order status',
      unchanged: 'Unchanged',
      notInHubspotCount: 'Deals HubSpot no longer has',
      checked: 'Deals checked',
      before: 'Before',
      after: 'After',
      'kind.draft': 'Draft',
      'kind.linked': 'Linked',
      noEffect: 'No deal is affected',
    },
  };

  const ORDER_STATUSES = [
    [1, '見積中(高)', 'Estimating (high)'],
    [2, '見積中(中)', 'Estimating (medium)'],
    [3, '見積中(低)', 'Estimating (low)'],
    [8, '見積中(除)', 'Estimating (excluded)'],
    [4, '受注確定', 'Order confirmed'],
    [5, '受注済', 'Ordered'],
    [9, '失注', 'Lost'],
  ];
  const ROLES = ['admin', 'master', 'manager', 'leader', 'staff'];

  let lang = localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'ja';
  const t = (key, ...args) => {
    let text = WORDS[lang][key] ?? WORDS.ja[key] ?? key;
    args.forEach((a, i) => { text = text.replace(`{${i}}`, String(a)); });
    return text;
  };
  const statusLabel = (code) => {
    const found = ORDER_STATUSES.find(([c]) => c === Number(code));
    return found ? (lang === 'en' ? found[2] : found[1]) : String(code);
  };
  // The catalog's words in the chosen language, from an entry or problem.
  const said = (item, key) => (lang === 'en' && item[`${key}_en`]) || item[key];

  // ---------------------------------------------------------------- DOM
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key in el && typeof value !== 'string') el[key] = value;
      else el.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  // append/replaceChildren without the nulls of optional parts.
  const present = (items) => items.flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false);
  const append = (parent, ...items) => parent.append(...present(items));
  const replace = (parent, ...items) => parent.replaceChildren(...present(items));
  let fieldSeq = 0;
  // A labelled control: <label for> + the control (with an id).
  function field(label, control, hint) {
    const id = control.id || `f${++fieldSeq}`;
    control.id = id;
    return h('div', { class: 'field' }, h('label', { for: id }, label), control,
      hint ? h('span', { class: 'small muted' }, hint) : null);
  }
  function select(options, value, attrs) {
    return h('select', attrs || {}, options.map(([v, label]) =>
      h('option', { value: String(v), selected: String(v) === String(value ?? '') }, label)));
  }
  const main = () => document.getElementById('main');
  function toast(text) {
    const el = document.getElementById('toast');
    el.textContent = text;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.textContent = ''; }, 5000);
  }
  function messageBox(kind, text, extra) {
    return h('div', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text, extra || null);
  }
  function when(value) {
    if (!value) return '—';
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    return d.toLocaleString(lang === 'en' ? 'en-GB' : 'ja-JP', { timeZone: 'Asia/Tokyo' });
  }
  function badge(kind, text) { return h('span', { class: `badge ${kind}` }, text); }

  // ---------------------------------------------------------------- session
  function claimsOf(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent(Array.from(atob(part), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
      return JSON.parse(json);
    } catch { return null; }
  }
  const session = {
    get token() { return sessionStorage.getItem(TOKEN_KEY); },
    set token(value) {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    },
    get claims() { return this.token ? claimsOf(this.token) : null; },
    // SPEC §8: settings access for master and admin, or a custom role granted it.
    get settings() {
      const c = this.claims;
      if (!c) return false;
      if (c.role === 'master' || c.role === 'admin') return true;
      return c.role === 'custom' && Array.isArray(c.permissions) && c.permissions.includes('hubspot_settings');
    },
  };

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const type = response.headers.get('content-type') || '';
    const data = type.includes('json') ? await response.json() : await response.text();
    if (response.status === 401 && path.startsWith('/v1/')) {
      session.token = null;
      render();
      throw new ApiError(401, data);
    }
    if (!response.ok) throw new ApiError(response.status, typeof data === 'object' ? data : { detail: data });
    return data;
  }
  function errorBox(error) {
    if (error instanceof ApiError && error.status === 403) return messageBox('error', `${t('forbidden')} ${error.message}`);
    return messageBox('error', error.message);
  }
  // Runs an action from a button: disables it meanwhile, shows a failure in `where`.
  async function act(button, where, action) {
    button.disabled = true;
    if (where) where.replaceChildren();
    try { await action(); } catch (error) {
      if (where) where.replaceChildren(errorBox(error)); else toast(error.message);
    } finally { button.disabled = false; }
  }

  // ---------------------------------------------------------------- screens
  const SCREENS = [
    { id: 'connection', settings: true, render: connectionScreen },
    { id: 'mapping', settings: true, render: mappingScreen },
    { id: 'rules', settings: true, render: rulesScreen },
    { id: 'drafts', settings: false, render: draftsScreen },
    { id: 'history', settings: true, render: historyScreen },
    { id: 'errors', settings: true, render: errorsScreen },
    { id: 'budget', settings: true, render: budgetScreen },
    { id: 'matching', settings: true, render: matchingScreen },
    { id: 'diagnosis', settings: true, render: diagnosisScreen },
    { id: 'links', settings: false, render: linksScreen },
  ];

  // `#/<screen>/<part>…?<query>`: the screen, its path parts and its query.
  function route() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, qs = ''] = hash.split('?');
    const [id, ...rest] = path.split('/');
    const decode = (x) => { try { return decodeURIComponent(x); } catch { return x; } };
    return { id: id || '', rest: rest.map(decode), query: new URLSearchParams(qs) };
  }
  // A query value of the route or of the page's URL (the OAuth flow's hand-over).
  const param = (name) => route().query.get(name) ?? new URLSearchParams(location.search).get(name);

  function renderChrome() {
    document.documentElement.lang = lang;
    document.title = t('title');
    document.querySelector('.skip').textContent = t('skip');
    const langButton = document.getElementById('lang');
    langButton.textContent = lang === 'ja' ? 'English' : '日本語';
    langButton.lang = lang === 'ja' ? 'en' : 'ja';
    const out = document.getElementById('signout');
    out.textContent = t('signOut');
    out.hidden = !session.token;
    const claims = session.claims;
    document.getElementById('who').textContent = claims
      ? `${claims.account_name || claims.account_id} · ${claims.role} · user ${claims.user_id}` : '';
    const nav = document.getElementById('nav');
    nav.setAttribute('aria-label', t('menu'));
    if (!session.token) { nav.replaceChildren(); return; }
    const current = route().id;
    const visible = SCREENS.filter((s) => !s.settings || session.settings);
    replace(nav,
      h('ul', {}, visible.map((s) => h('li', {}, h('a', {
        href: `#/${s.id}`, id: `nav-${s.id}`, 'aria-current': s.id === current ? 'page' : null,
      }, t(`nav.${s.id}`))))),
      session.settings ? null : h('p', { class: 'note', id: 'settings-absent' }, t('settingsAbsent')),
    );
  }

  async function render() {
    renderChrome();
    const root = main();
    if (!session.token) { await signInScreen(root); return; }
    let { id, rest } = route();
    const changed = render.last !== location.hash;
    render.last = location.hash;
    const allowed = SCREENS.filter((s) => !s.settings || session.settings);
    let screen = allowed.find((s) => s.id === id);
    if (!screen) {
      const wanted = SCREENS.find((s) => s.id === id);
      if (wanted && wanted.settings) {
        root.replaceChildren(h('h1', {}, t(`nav.${wanted.id}`)), messageBox('warn', t('settingsAbsent')));
        return;
      }
      screen = allowed[0];
      id = screen.id;
      history.replaceState(null, '', `${location.pathname}${location.search}#/${id}`);
      renderChrome();
    }
    root.replaceChildren(h('h1', { id: 'screen-title' }, t(`nav.${screen.id}`)), h('p', { class: 'muted' }, t('loading')));
    const body = h('div', { id: `screen-${screen.id}` });
    try {
      await screen.render(body, rest);
      root.replaceChildren(h('h1', { id: 'screen-title' }, t(`nav.${screen.id}`)), body);
    } catch (error) {
      root.replaceChildren(h('h1', { id: 'screen-title' }, t(`nav.${screen.id}`)), errorBox(error));
    }
    // Focus moves to the screen when the screen changed, not after a save.
    if (changed) root.focus({ preventScroll: true });
  }

  // Sign-in: locally the stack mints a dev JWT; in AWS board hands the token over.
  async function signInScreen(root) {
    root.replaceChildren(h('h1', { id: 'screen-title' }, t('signIn')), h('p', {}, t('loading')));
    let dev = null;
    try {
      const response = await fetch('/console/dev/sign-in', { headers: { Accept: 'application/json' } });
      if (response.ok) dev = await response.json();
    } catch { dev = null; }
    const out = h('div', { id: 'sign-in-result' });
    const parts = [h('h1', { id: 'screen-title' }, t('signIn'))];
    if (dev) {
      const account = h('input', { name: 'account_id', value: dev.accounts?.[0] || 'acct-a', list: 'dev-accounts', required: true, autocomplete: 'off' });
      const role = select(ROLES.map((r) => [r, r]), 'admin', { name: 'role' });
      const user = h('input', { name: 'user_id', type: 'number', min: '1', value: '1', required: true });
      const submit = h('button', { type: 'submit', id: 'sign-in' }, t('signInButton'));
      const form = h('form', { id: 'dev-sign-in', onsubmit: (event) => {
        event.preventDefault();
        act(submit, out, async () => {
          const minted = await api('POST', '/console/dev/sign-in', {
            account_id: account.value.trim(), role: role.value, user_id: Number(user.value),
          });
          session.token = minted.token;
          await render();
        });
      } },
      h('p', {}, t('signInLead')),
      h('datalist', { id: 'dev-accounts' }, (dev.accounts || []).map((a) => h('option', { value: a }))),
      field(t('account'), account), field(t('role'), role), field(t('userId'), user),
      h('div', { class: 'actions' }, submit));
      parts.push(form);
    } else {
      parts.push(h('p', {}, t('signInProd')));
    }
    // Pasting a token is for development only (board hands it over in production).
    if (dev) {
      const token = h('textarea', { rows: 3, cols: 60, name: 'token' });
      const use = h('button', { type: 'submit', class: 'secondary' }, t('useToken'));
      parts.push(h('details', {}, h('summary', {}, t('tokenLabel')),
        h('form', { onsubmit: (event) => {
          event.preventDefault();
          if (claimsOf(token.value.trim())) { session.token = token.value.trim(); render(); }
        } }, field(t('tokenLabel'), token), use)));
    }
    parts.push(out);
    root.replaceChildren(...parts);
  }

  // 1. Connection ------------------------------------------------------------
  async function connectionScreen(body) {
    const out = h('div', { id: 'connection-result' });
    append(body, out);
    const failed = param('hubspot_error');
    if (failed) {
      // Only the code is taken from the URL (a crafted link cannot put words on this page).
      out.append(messageBox('error', `${t('oauthError')} (${/^[a-z_]{1,40}$/.test(failed) ? failed : '?'})`));
    }
    const confirmation = param('confirmation');
    if (confirmation) append(body, confirmPanel(confirmation, out));
    const status = await api('GET', '/v1/hubspot/connection');
    append(body, statusView(status));
    const actions = h('div', { class: 'actions' });
    append(body, actions);
    if (status.state !== 'active' && status.state !== 'suspended') {
      const connect = h('button', { type: 'button', id: 'connect' }, t('connect'));
      connect.addEventListener('click', () => act(connect, out, async () => {
        const started = await api('POST', '/v1/hubspot/connection/authorize');
        location.assign(started.authorize_url);
      }));
      body.insertBefore(h('p', {}, t('connectLead')), actions);
      actions.append(connect);
    }
    if (status.state === 'active') {
      const resync = h('button', { type: 'button', class: 'secondary', id: 'resync-all' }, t('resyncAll'));
      resync.addEventListener('click', () => act(resync, out, async () => {
        await api('POST', '/v1/hubspot/resync-all');
        out.replaceChildren(messageBox('ok', t('resyncQueued')));
      }));
      actions.append(resync);
    }
    if (['active', 'suspended', 'pending'].includes(status.state)) {
      actions.append(dangerPanel('disconnect', t('disconnectLead'), t('disconnectDo'), out, async () => {
        await api('DELETE', '/v1/hubspot/connection');
        out.replaceChildren(messageBox('ok', t('disconnected')));
      }));
      actions.append(dangerPanel('uninstall', t('uninstallLead'), t('uninstallDo'), out, async () => {
        await api('DELETE', '/v1/hubspot/connection?uninstall=true');
        out.replaceChildren(messageBox('ok', t('uninstalled')));
      }));
    }
  }

  // The OAuth flow's last step: the same user who started confirms.
  function confirmPanel(confirmation, out) {
    const archive = h('input', { type: 'checkbox', id: 'archive-previous' });
    const archiveRow = h('div', { hidden: true }, archive, ' ', h('label', { for: 'archive-previous' }, t('archivePrevious')));
    const button = h('button', { type: 'button', id: 'confirm' }, t('confirm'));
    button.addEventListener('click', () => act(button, out, async () => {
      try {
        await api('POST', '/v1/hubspot/connection/confirm', { confirmation, archive_previous_portal: archive.checked });
      } catch (error) {
        if (error.problem.code === 'portal_conflict') archiveRow.hidden = false;
        throw error;
      }
      history.replaceState(null, '', `${location.pathname}#/connection`);
      render.last = null;
      await render();
      toast(t('state.active'));
    }));
    return h('div', { class: 'panel', id: 'confirm-panel' }, h('p', {}, t('confirmLead')), archiveRow, button);
  }

  // A destructive action behind a second, explicit button.
  function dangerPanel(id, lead, doLabel, out, action) {
    const open = h('button', { type: 'button', class: 'secondary', id }, t(id));
    const go = h('button', { type: 'button', class: 'danger', id: `${id}-confirm` }, doLabel);
    const cancel = h('button', { type: 'button', class: 'quiet' }, t('cancel'));
    const panel = h('div', { class: 'panel', hidden: true, id: `${id}-panel` }, h('p', {}, lead), h('div', { class: 'actions' }, go, cancel));
    open.addEventListener('click', () => { panel.hidden = false; go.focus(); });
    cancel.addEventListener('click', () => { panel.hidden = true; open.focus(); });
    go.addEventListener('click', () => act(go, out, async () => {
      await action();
      panel.hidden = true;
      const keep = out.cloneNode(true);
      await render();
      document.getElementById('connection-result')?.replaceWith(keep);
    }));
    return h('span', {}, open, panel);
  }

  function statusView(s) {
    const state = s.state;
    const kind = state === 'active' ? 'ok' : state === 'suspended' ? 'error' : 'muted';
    const facts = [
      [t('state'), badge(kind, t(`state.${state}`))],
      [t('portal'), s.portal_id ? `${s.portal_id}${s.hub_domain ? ` (${s.hub_domain})` : ''}` : '—'],
      [t('authorizedBy'), s.authorized_by ? (s.authorized_by.email || s.authorized_by.user_id) : '—'],
      [t('connectedAt'), when(s.connected_at)],
      [t('lastWebhook'), when(s.last_webhook_at)],
      [t('lastSyncToBoard'), when(s.last_sync_at?.hubspot_to_board)],
      [t('lastSyncToHubspot'), when(s.last_sync_at?.board_to_hubspot)],
      [t('authFailures'), String(s.consecutive_auth_failures ?? 0)],
      [t('otherAccounts'), (s.other_accounts_on_portal || []).join(', ') || t('none')],
      [t('scopes'), (s.scopes || []).join(', ') || '—'],
    ];
    const parts = [h('dl', { class: 'facts', id: 'connection-status', 'data-state': state },
      facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))];
    if (s.message) parts.unshift(messageBox(state === 'suspended' ? 'error' : 'warn', said(s, 'message'), s.guidance ? h('p', {}, s.guidance) : null));
    if (s.hubspot_paused) parts.push(messageBox('warn', `${t('paused')}: ${when(s.hubspot_paused.until)} (${s.hubspot_paused.reason})`));
    if ((s.checklist || []).length) {
      parts.push(h('h2', {}, t('checklist')), h('ul', { id: 'checklist' }, s.checklist.map((c) =>
        h('li', { class: c.done ? 'pass' : (c.required ? 'fail' : 'muted') }, c.done ? '✔ ' : '□ ', c.message))));
    }
    return h('section', {}, parts);
  }

  // 2. Stage mapping ---------------------------------------------------------
  async function mappingScreen(body) {
    const data = await api('GET', '/v1/hubspot/pipelines');
    append(body, h('p', {}, t('mappingLead')));
    if ((data.problems || []).length) append(body, problemList(data.problems, {}));
    for (const pipeline of data.items) append(body, pipelineEditor(pipeline));
  }

  function problemList(problems, stageLabels) {
    return h('div', { class: 'message warn' }, h('strong', {}, t('problems')), h('ul', {}, problems.map((p) => {
      const name = stageLabels[p.stage_id] || p.stage_id || p.pipeline_id || '';
      const key = `problem.${p.kind}`;
      return h('li', { 'data-kind': p.kind }, WORDS.ja[key] ? t(key, name) : `${p.kind} ${name}`);
    })));
  }

  function statusOptions() {
    return [['', t('unmapped')], ...ORDER_STATUSES.map(([code]) => [code, `${code} ${statusLabel(code)}`])];
  }

  function pipelineEditor(pipeline) {
    const labels = Object.fromEntries(pipeline.stages.map((s) => [s.id, s.label]));
    const selects = new Map();
    const out = h('div');
    const rows = pipeline.stages.map((stage) => {
      const control = select(statusOptions(), stage.order_status ?? '', {
        'aria-label': `${pipeline.label} / ${stage.label}`, 'data-stage': stage.id,
      });
      selects.set(stage.id, control);
      const flag = stage.order_status == null ? badge('warn', t('unmapped')) : null;
      return h('tr', {}, h('th', { scope: 'row' }, stage.label, h('div', { class: 'small muted' }, stage.id)), h('td', {}, control, ' ', flag));
    });
    const current = () => Object.fromEntries([...selects].map(([id, el]) => [id, el.value === '' ? null : Number(el.value)]));
    const save = h('button', { type: 'button', class: 'save-mapping' }, t('save'));
    save.addEventListener('click', () => act(save, out, async () => {
      await api('PUT', `/v1/hubspot/pipelines/${encodeURIComponent(pipeline.id)}/status-mapping`, { stages: current() });
      toast(t('saved'));
      await render();
    }));
    const buttons = [save];
    if (pipeline.suggested_mapping) {
      const suggest = h('button', { type: 'button', class: 'secondary' }, t('applySuggestion'));
      suggest.addEventListener('click', () => {
        for (const [stage, code] of Object.entries(pipeline.suggested_mapping)) {
          const el = selects.get(stage);
          if (el && el.value === '') el.value = String(code);
        }
      });
      buttons.push(suggest);
    }
    const extra = mappingExtras(pipeline, current, out);
    return h('section', { class: 'pipeline', 'data-pipeline': pipeline.id },
      h('h2', {}, pipeline.label),
      (pipeline.problems || []).length ? problemList(pipeline.problems, labels) : null,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('stage')), h('th', { scope: 'col' }, t('orderStatus')))), h('tbody', {}, rows)),
      h('div', { class: 'actions' }, buttons, extra), out);
  }
  // The preview before saving: what the pipeline's edited mapping would change.
  function mappingExtras(pipeline, current, out) {
    const button = h('button', { type: 'button', class: 'secondary preview-mapping' }, t('preview'));
    button.addEventListener('click', () => act(button, out, async () => {
      const result = await api('POST', '/v1/hubspot/preview', { status_mapping: { pipeline_id: pipeline.id, stages: current() } });
      out.replaceChildren(previewView(result));
      out.scrollIntoView({ block: 'start' });
    }));
    return button;
  }

  // Filter rules and account label ------------------------------------------
  async function rulesScreen(body) {
    const [rulesView, options, label] = await Promise.all([
      api('GET', '/v1/hubspot/filter-rules'),
      api('GET', '/v1/hubspot/filter-options'),
      api('GET', '/v1/hubspot/account-label'),
    ]);
    const choices = {
      team: (options.teams || []).map((x) => [x.id, x.name]),
      owner: (options.owners || []).map((x) => [x.id, `${x.name}${x.email ? ` <${x.email}>` : ''}`]),
      filter_key: (options.filter_key?.options || []).map((x) => [x.value, x.label]),
    };
    let rules = JSON.parse(JSON.stringify(rulesView.rules || []));
    const list = h('div', { id: 'rules' });
    const out = h('div');
    const draw = () => {
      list.replaceChildren(...(rules.length ? rules.flatMap((rule, ri) => [
        ri > 0 ? h('p', { class: 'muted' }, t('ruleOr')) : null,
        ruleEditor(rule, ri, choices, () => { rules.splice(ri, 1); draw(); }, draw),
      ]).filter(Boolean) : [h('p', { class: 'muted' }, t('noRules'))]));
    };
    draw();
    const add = h('button', { type: 'button', class: 'secondary', id: 'add-rule' }, t('addRule'));
    add.addEventListener('click', () => { rules.push({ conditions: [{ field: 'team', values: [] }] }); draw(); });
    const save = h('button', { type: 'button', id: 'save-rules' }, t('save'));
    save.addEventListener('click', () => act(save, out, async () => {
      const saved = await api('PUT', '/v1/hubspot/filter-rules', { rules });
      rules = saved.rules;
      draw();
      out.replaceChildren(messageBox('ok', t('saved')));
    }));
    if (options.filter_key?.problem) append(body, messageBox('warn', options.filter_key.problem));
    append(body, h('p', {}, t('rulesLead')), list, h('div', { class: 'actions' }, add, save, rulesExtras(() => rules, out)), out);

    const labelInput = h('input', { id: 'account-label', value: label.label || '', maxlength: '50', size: 40 });
    const labelOut = h('div');
    const labelSave = h('button', { type: 'button', id: 'save-label' }, t('save'));
    labelSave.addEventListener('click', () => act(labelSave, labelOut, async () => {
      await api('PUT', '/v1/hubspot/account-label', { label: labelInput.value });
      labelOut.replaceChildren(messageBox('ok', t('saved')));
    }));
    append(body, h('h2', {}, t('accountLabel')), h('p', { class: 'small' }, t('accountLabelLead')),
      field(t('accountLabel'), labelInput), h('div', { class: 'actions' }, labelSave), labelOut);
  }
  function rulesExtras(rules, out) {
    const button = h('button', { type: 'button', class: 'secondary', id: 'preview-rules' }, t('preview'));
    button.addEventListener('click', () => act(button, out, async () => {
      const result = await api('POST', '/v1/hubspot/preview', { filter_rules: { rules: rules() } });
      out.replaceChildren(previewView(result));
      out.scrollIntoView({ block: 'start' });
    }));
    return button;
  }

  function previewView(p) {
    const c = p.counts;
    const summary = h('ul', { class: 'preview-counts' },
      ['newly_qualifying', 'no_longer_qualifying', 'status_changed'].map((k) => h('li', { 'data-effect': k }, `${t(`effect.${k}`)}: ${c[k]}`)),
      h('li', {}, `${t('unchanged')}: ${c.unchanged}`),
      c.not_in_hubspot ? h('li', {}, `${t('notInHubspotCount')}: ${c.not_in_hubspot}`) : null,
      h('li', {}, `${t('checked')}: ${p.checked}`));
    const table = p.items.length ? h('table', { class: 'preview-items' }, h('thead', {}, h('tr', {},
      [t('dealName'), t('kind'), t('status'), t('before'), t('after'), t('reason')].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, p.items.map((i) => h('tr', { 'data-deal': i.deal_id, 'data-effect': i.effect },
      h('td', {}, i.name || i.deal_id), h('td', {}, t(`kind.${i.kind}`)), h('td', {}, t(`effect.${i.effect}`)),
      h('td', {}, i.order_status_before ? statusLabel(i.order_status_before) : '—'),
      h('td', {}, i.order_status_after ? statusLabel(i.order_status_after) : '—'),
      h('td', { class: 'small' }, lang === 'en' ? i.reason_en : i.reason))))) : h('p', { class: 'muted' }, t('noEffect'));
    return h('section', { class: 'panel preview' }, h('h3', {}, t('preview')), h('p', { class: 'small' }, t('previewLead')),
      p.complete ? null : messageBox('warn', t('incomplete')), summary, table);
  }

  function ruleEditor(rule, index, choices, remove, redraw) {
    const conditions = rule.conditions.map((condition, ci) => {
      const fieldSelect = select(['team', 'owner', 'filter_key'].map((f) => [f, t(`field.${f}`)]), condition.field,
        { 'aria-label': `${t('rule', index + 1)} ${t('condition')} ${ci + 1} ${t('field')}`, class: 'condition-field' });
      fieldSelect.addEventListener('change', () => { condition.field = fieldSelect.value; condition.values = []; redraw(); });
      const known = choices[condition.field] || [];
      const unknown = condition.values.filter((v) => !known.some(([k]) => k === v)).map((v) => [v, v]);
      const boxes = [...known, ...unknown].map(([value, label]) => {
        const box = h('input', { type: 'checkbox', value, checked: condition.values.includes(value) });
        box.addEventListener('change', () => {
          condition.values = box.checked ? [...condition.values, value] : condition.values.filter((v) => v !== value);
        });
        return h('label', {}, box, ' ', label);
      });
      const drop = h('button', { type: 'button', class: 'quiet' }, t('removeCondition'));
      drop.addEventListener('click', () => { rule.conditions.splice(ci, 1); if (!rule.conditions.length) remove(); else redraw(); });
      return h('fieldset', { class: 'condition' }, h('legend', {}, `${t('condition')} ${ci + 1}`),
        field(t('field'), fieldSelect), h('div', { class: 'checks', role: 'group', 'aria-label': t('values') }, boxes), drop);
    });
    const addCondition = h('button', { type: 'button', class: 'secondary' }, t('addCondition'));
    addCondition.addEventListener('click', () => { rule.conditions.push({ field: 'owner', values: [] }); redraw(); });
    const drop = h('button', { type: 'button', class: 'quiet' }, t('removeRule'));
    drop.addEventListener('click', remove);
    return h('div', { class: 'rule' }, h('h3', {}, t('rule', index + 1)), conditions, h('div', { class: 'actions' }, addCondition, drop));
  }

  // 3. Drafts -----------------------------------------------------------------
  async function draftsScreen(body, rest) {
    if (rest[0]) return draftDetail(body, rest[0]);
    const state = route().query.get('state') || 'open';
    const tabs = h('nav', { class: 'tabs', 'aria-label': t('state') }, ['open', 'withdrawn', 'discarded', 'registered'].map((s) => h('a', {
      class: 'button secondary', href: `#/drafts?state=${s}`, 'aria-current': s === state ? 'page' : null, 'data-state': s,
    }, t(`draft.${s}`))));
    const items = [];
    let cursor = null;
    do {
      const page = await api('GET', `/v1/hubspot/drafts?state=${state}&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < 2000);
    const search = h('input', { type: 'search', id: 'draft-search', placeholder: t('searchDeals') });
    const tbody = h('tbody');
    const draw = () => {
      const q = search.value.trim();
      const shown = items.filter((d) => !q || d.name.includes(q) || d.deal_id === q);
      tbody.replaceChildren(...(shown.length ? shown.map((d) => h('tr', { 'data-deal': d.deal_id },
        h('td', {}, h('a', { href: `#/drafts/${encodeURIComponent(d.id)}` }, d.name)),
        h('td', {}, d.order_status_label || statusLabel(d.order_status)),
        h('td', {}, d.amount ?? '—'),
        h('td', {}, t(`draft.${d.state}`), d.reason ? h('div', { class: 'small muted' }, d.reason) : null),
        h('td', {}, when(d.updated_at)))) : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, t('none')))]));
    };
    search.addEventListener('input', draw);
    draw();
    append(body, h('p', {}, t('draftsLead')), tabs, field(t('search'), search),
      h('table', { id: 'drafts' }, h('thead', {}, h('tr', {}, [t('dealName'), t('orderStatus'), t('amount'), t('state'), t('updatedAt')].map((x) => h('th', { scope: 'col' }, x)))), tbody));
  }

  async function draftDetail(body, id) {
    const d = await api('GET', `/v1/hubspot/drafts/${encodeURIComponent(id)}`);
    const out = h('div', { id: 'draft-result' });
    append(body, h('p', {}, h('a', { href: `#/drafts?state=${d.state}` }, t('back'))), h('h2', { id: 'draft-name' }, d.name),
      h('dl', { class: 'facts' }, [
        [t('state'), t(`draft.${d.state}`)], ['Deal ID', d.deal_id], [t('orderStatus'), d.order_status_label || statusLabel(d.order_status)],
        [t('amount'), d.amount ?? '—'], [t('closeDate'), d.close_date ?? '—'], [t('reason'), d.reason ?? '—'],
        [t('companies'), (d.companies || []).map((c) => c.name + (c.primary ? ' ★' : '')).join(', ') || '—'],
        [t('contacts'), (d.contacts || []).map((c) => `${c.last_name} ${c.first_name} ${c.email}`.trim()).join(', ') || '—'],
        ['board', d.project_id ? `#${d.project_id}` : '—'],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])), out);
    const actions = h('div', { class: 'actions' });
    append(body, actions);
    if (d.state === 'open') {
      const discard = h('button', { type: 'button', class: 'secondary', id: 'discard' }, t('discard'));
      discard.addEventListener('click', () => act(discard, out, async () => {
        await api('POST', `/v1/hubspot/drafts/${encodeURIComponent(id)}/discard`);
        await render();
      }));
      actions.append(discard);
      append(body, registerForm(d, out));
    }
    if (d.state === 'discarded') {
      const restore = h('button', { type: 'button', id: 'restore' }, t('restore'));
      restore.addEventListener('click', () => act(restore, out, async () => {
        await api('POST', `/v1/hubspot/drafts/${encodeURIComponent(id)}/restore`);
        await render();
      }));
      actions.append(restore);
    }
  }

  function registerForm(d, out) {
    const suggestions = d.customer_suggestions || [];
    const options = suggestions.map((s, i) => [String(i),
      s.client_id ? `${s.client_name} (${t(`suggest.${s.reason}`)})` : t('createFrom', s.company_name)]);
    if (!suggestions.length) options.push(['contact', t('createFromContact')]);
    const customer = select(options, '0', { id: 'register-customer', name: 'customer' });
    const user = h('input', { id: 'register-user', type: 'number', min: '1', required: true, value: d.suggested_user_id ?? '' });
    const timing = select([1, 2, 3].map((k) => [k, `${k} ${t(`timing.${k}`)}`]), 1, { id: 'register-timing' });
    const invoiceDate = h('input', { id: 'register-invoice-date', type: 'date', value: d.close_date?.slice(0, 10) || '' });
    const start = h('input', { type: 'date' });
    const end = h('input', { type: 'date' });
    const dates = h('input', { type: 'text', placeholder: '2026-12-31, 2027-01-31' });
    const byTiming = {
      1: field(t('invoiceDate'), invoiceDate),
      2: h('div', {}, field(t('contractStart'), start), field(t('contractEnd'), end)),
      3: field(t('invoiceDates'), dates),
    };
    const timingFields = h('div');
    const showTiming = () => timingFields.replaceChildren(byTiming[timing.value]);
    timing.addEventListener('change', showTiming);
    showTiming();
    const submit = h('button', { type: 'submit', id: 'register' }, t('register'));
    const form = h('form', { class: 'panel', id: 'register-form', onsubmit: (event) => {
      event.preventDefault();
      act(submit, out, async () => {
        const chosen = suggestions[Number(customer.value)];
        const kbn = Number(timing.value);
        const registration = { client_id: chosen?.client_id ?? null, user_id: Number(user.value), invoice_timing_kbn: kbn };
        if (chosen && !chosen.client_id) registration.company_id = chosen.company_id;
        if (kbn === 1) registration.invoice_date = invoiceDate.value;
        if (kbn === 2) { registration.contract_start_date = start.value; registration.contract_end_date = end.value; }
        if (kbn === 3) registration.invoice_dates = dates.value.split(',').map((x) => x.trim()).filter(Boolean);
        const done = await api('POST', `/v1/hubspot/drafts/${encodeURIComponent(d.id)}/register`, registration);
        await render();
        document.getElementById('draft-result')?.replaceChildren(messageBox('ok', t('registered', done.project_id)));
      });
    } }, h('h3', {}, t('registerTitle')), field(t('customer'), customer), field(t('projectOwner'), user),
    field(t('invoiceTiming'), timing), timingFields, h('div', { class: 'actions' }, submit));
    return form;
  }

  // 4. History ----------------------------------------------------------------
  // The catalog's codes, from the API's own document (one list, the service's).
  let codes = null;
  async function catalogCodes() {
    if (!codes) {
      try {
        const doc = await api('GET', '/openapi.json');
        codes = doc.components?.schemas?.Code?.enum || [];
      } catch { codes = []; }
    }
    return codes;
  }
  const OBJECTS = ['deal', 'company', 'contact', 'project', 'customer', 'customer_contact'];

  // The history filters as query parameters (shared with the CSV export).
  function historyQuery(form) {
    const q = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (!value) continue;
      if (key === 'from' || key === 'to') {
        q.set(key, `${value}T${key === 'from' ? '00:00:00' : '23:59:59.999'}+09:00`);
      } else q.set(key, value);
    }
    return q;
  }

  function historyFilters(onChange, codeList) {
    const form = h('form', { id: 'history-filters', class: 'row', onsubmit: (e) => { e.preventDefault(); onChange(); } },
      field(t('searchDeals'), h('input', { type: 'search', name: 'q' })),
      field(t('direction'), select([['', t('any')], ['hubspot_to_board', t('direction.hubspot_to_board')], ['board_to_hubspot', t('direction.board_to_hubspot')]], '', { name: 'direction' })),
      field(t('status'), select([['', t('any')], ...['success', 'skip', 'error'].map((s) => [s, t(`status.${s}`)])], '', { name: 'status' })),
      field(t('code'), select([['', t('any')], ...codeList.map((c) => [c, c])], '', { name: 'code' })),
      field(t('objectType'), select([['', t('any')], ...OBJECTS.map((o) => [o, t(`object.${o}`)])], '', { name: 'object_type' })),
      field(t('from'), h('input', { type: 'date', name: 'from' })),
      field(t('to'), h('input', { type: 'date', name: 'to' })),
      h('div', { class: 'field' }, h('button', { type: 'submit', id: 'history-search' }, t('search'))));
    return form;
  }

  async function historyScreen(body, rest) {
    if (rest[0]) return historyEntry(body, rest[0]);
    const tbody = h('tbody');
    const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('more'));
    const out = h('div');
    let cursor = null;
    const form = historyFilters(() => load(true), await catalogCodes());
    async function load(fresh) {
      const q = historyQuery(form);
      q.set('limit', '50');
      if (!fresh && cursor) q.set('cursor', cursor);
      const page = await api('GET', `/v1/hubspot/history?${q}`);
      if (fresh) tbody.replaceChildren();
      for (const e of page.items) tbody.append(historyRow(e));
      if (!tbody.children.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('noEntries'))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    }
    more.addEventListener('click', () => act(more, out, () => load(false)));
    await load(true);
    append(body, h('p', {}, t('historyLead')), form, historyExtras(form, out), out,
      h('table', { id: 'history' }, h('thead', {}, h('tr', {}, [t('occurredAt'), t('direction'), t('dealName'), t('status'), t('code'), t('message')].map((x) => h('th', { scope: 'col' }, x)))), tbody), more);
  }
  // CSV of the filtered history: fetched with the token, saved as a file.
  function historyExtras(form, out) {
    const button = h('button', { type: 'button', class: 'secondary', id: 'export-csv' }, t('exportCsv'));
    button.addEventListener('click', () => act(button, out, () => exportCsv(historyQuery(form), out)));
    return h('div', { class: 'actions' }, button);
  }

  async function exportCsv(query, out) {
    query.set('format', 'csv');
    const response = await fetch(`/v1/hubspot/history/export?${query}`, { headers: { Authorization: `Bearer ${session.token}` } });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new ApiError(response.status, problem);
    }
    const blob = await response.blob();
    const link = h('a', { href: URL.createObjectURL(blob), download: 'hubspot-history.csv', hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    out.replaceChildren(messageBox('ok', t('exported', blob.size)));
  }

  // 5. Errors dashboard -------------------------------------------------------
  async function errorsScreen(body) {
    const days = ['1', '7', '30'].includes(route().query.get('days')) ? route().query.get('days') : '7';
    const out = h('div', { id: 'errors-result' });
    const periods = h('nav', { class: 'tabs', 'aria-label': t('period') }, ['1', '7', '30'].map((d) => h('a', {
      class: 'button secondary', href: `#/errors?days=${d}`, 'aria-current': d === days ? 'page' : null, 'data-days': d,
    }, t(`period.${d}`))));
    const now = new Date();
    const query = new URLSearchParams({ from: new Date(now.getTime() - Number(days) * 86400000).toISOString(), to: now.toISOString() });
    const [summary, recent] = await Promise.all([
      api('GET', `/v1/hubspot/history/summary?${query}`),
      api('GET', `/v1/hubspot/history?status=error&limit=50&${query}`),
    ]);
    const exportButton = h('button', { type: 'button', class: 'secondary', id: 'errors-export' }, t('exportCsv'));
    exportButton.addEventListener('click', () => act(exportButton, out, () => exportCsv(new URLSearchParams(query), out)));
    append(body, h('p', {}, t('errorsLead')), periods,
      summary.complete ? null : messageBox('warn', t('incomplete')),
      h('dl', { class: 'facts', id: 'errors-totals' }, [
        [t('total'), summary.total], [t('status.success'), summary.success], [t('status.skip'), summary.skip], [t('status.error'), summary.error],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
      h('div', { class: 'actions' }, exportButton), out,
      h('h2', {}, t('byCode')), codeTable(summary, query, out),
      h('h2', {}, t('trend')), trendChart(summary),
      h('h2', {}, t('recentErrors')), recentErrors(recent.items, out));
  }

  function codeTable(summary, query, out) {
    if (!summary.by_code.length) return h('p', { class: 'muted', id: 'by-code' }, t('noErrors'));
    const max = Math.max(...summary.by_code.map((r) => r.count));
    return h('table', { id: 'by-code' }, h('thead', {}, h('tr', {},
      [t('code'), t('objectType'), t('count'), t('retryable'), t('message')].map((x) => h('th', { scope: 'col' }, x)),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('retry'))))),
    h('tbody', {}, summary.by_code.map((row) => {
      const retry = row.retryable ? h('button', { type: 'button', class: 'secondary retry-code', 'data-code': row.code }, t('retryCode')) : null;
      retry?.addEventListener('click', () => act(retry, out, async () => {
        // The row's code, object type and period: what the row counts.
        const done = await api('POST', '/v1/hubspot/history/retry', {
          code: row.code, object_type: row.object_type || undefined, from: query.get('from'), to: query.get('to'),
        });
        out.replaceChildren(messageBox('ok', t('queued', done.queued, done.skipped)));
      }));
      const bar = h('span', { class: 'bar error' });
      bar.style.width = `${Math.round((row.count / max) * 120)}px`;
      return h('tr', { 'data-code': row.code, 'data-object': row.object_type || '' },
        h('td', {}, row.code), h('td', {}, row.object_type ? t(`object.${row.object_type}`) : '—'),
        h('td', { class: 'count' }, bar, ' ', String(row.count)),
        h('td', {}, String(row.retryable)), h('td', {}, lang === 'en' ? row.message_en : row.message), h('td', {}, retry));
    })));
  }

  // Bars as elements with widths set from script (the CSP allows no inline styles in markup).
  function trendChart(summary) {
    const max = Math.max(1, ...summary.trend.map((p) => p.error + p.skip));
    const chart = h('div', { class: 'trend', id: 'trend', role: 'img', 'aria-label': `${t('trend')}: ${summary.trend.map((p) => p.error + p.skip).join(', ')}` },
      summary.trend.map((p) => {
        const bar = h('span', { title: `${when(p.start)} ${t('status.error')} ${p.error} / ${t('status.skip')} ${p.skip}` });
        bar.style.height = `${Math.round(((p.error + p.skip) / max) * 100)}%`;
        return bar;
      }));
    return chart;
  }

  function recentErrors(items, out) {
    if (!items.length) return h('p', { class: 'muted' }, t('noErrors'));
    const boxes = [];
    const retry = h('button', { type: 'button', id: 'retry-selected' }, t('retrySelected'));
    retry.addEventListener('click', () => act(retry, out, async () => {
      const ids = boxes.filter((b) => b.checked).map((b) => b.value);
      if (!ids.length) { out.replaceChildren(messageBox('warn', t('selectFirst'))); return; }
      const done = await api('POST', '/v1/hubspot/history/retry', { ids });
      out.replaceChildren(messageBox('ok', t('queued', done.queued, done.skipped)));
    }));
    const rows = items.map((e) => {
      const box = h('input', { type: 'checkbox', value: e.id, 'aria-label': `${t('select')} ${e.name || e.id}` });
      boxes.push(box);
      const row = historyRow(e);
      row.prepend(h('td', {}, box));
      return row;
    });
    return h('div', {}, h('table', { id: 'recent-errors' }, h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('select'))),
      [t('occurredAt'), t('direction'), t('dealName'), t('status'), t('code'), t('message')].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows)), h('div', { class: 'actions' }, retry));
  }

  // 6. API budget ---------------------------------------------------------------
  async function budgetScreen(body) {
    const b = await api('GET', '/v1/hubspot/budget');
    const refresh = h('button', { type: 'button', class: 'secondary', id: 'budget-refresh', onclick: () => render() }, t('refresh'));
    const windowRow = (key, w) => {
      const bar = h('span', { class: 'bar' });
      bar.style.width = `${Math.round((Math.min(w.in_window, w.limit) / Math.max(1, w.limit)) * 120)}px`;
      return h('tr', { 'data-share': key }, h('th', { scope: 'row' }, t(`share.${key}`)), h('td', {}, bar, ` ${w.in_window} / ${w.limit}`), h('td', {}, String(w.window_ms)));
    };
    const windows = (rows) => h('table', { class: 'windows' }, h('thead', {}, h('tr', {},
      [t('share'), `${t('inWindow')} / ${t('limit')}`, t('windowMs')].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows));
    append(body, h('p', {}, t('budgetLead')), h('div', { class: 'actions' }, refresh));
    if (b.hubspot) {
      const hs = b.hubspot;
      append(body, h('h2', {}, `HubSpot (${hs.portal_id})`),
        h('dl', { class: 'facts', id: 'budget-hubspot' }, [
          [t('daily'), t(`daily.${hs.daily}`)],
          [t('accountsOnPortal'), String(hs.accounts_on_portal)],
        ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
        hs.held ? messageBox('warn', t('heldUntil', when(hs.held.until), hs.held.reason)) : null,
        windows([windowRow('background', hs.background), windowRow('account', hs.account_share), windowRow('interactive', hs.interactive)]),
        h('table', { id: 'budget-minutes' }, h('thead', {}, h('tr', {},
          [t('minute'), t('background'), t('accountCalls'), t('interactive'), t('rateLimited')].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, hs.minutes.slice().reverse().map((m) => h('tr', { class: m.rate_limited ? 'fail' : null },
          h('td', {}, when(m.start)), h('td', {}, String(m.background)), h('td', {}, String(m.account)),
          h('td', {}, String(m.interactive)), h('td', {}, String(m.rate_limited)))))));
    } else {
      append(body, messageBox('warn', t('notConnectedBudget')));
    }
    append(body, h('h2', {}, 'board'), windows([windowRow('board', b.board.background)]),
      h('table', { id: 'budget-board-minutes' }, h('thead', {}, h('tr', {},
        [t('minute'), t('background'), t('rateLimited')].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, b.board.minutes.slice().reverse().map((m) => h('tr', {},
        h('td', {}, when(m.start)), h('td', {}, String(m.background)), h('td', {}, String(m.rate_limited)))))));
  }

  function historyRow(e) {
    const kind = e.status === 'error' ? 'error' : e.status === 'success' ? 'ok' : 'warn';
    return h('tr', { 'data-id': e.id, 'data-status': e.status, 'data-code': e.code || '' },
      h('td', {}, h('a', { href: `#/history/${encodeURIComponent(e.id)}` }, when(e.occurred_at))),
      h('td', {}, t(`direction.${e.direction}`)),
      h('td', {}, e.name || '—', h('div', { class: 'small muted' }, [e.object_type && t(`object.${e.object_type}`), e.hubspot_id && `HubSpot ${e.hubspot_id}`, e.board_id && `board ${e.board_id}`].filter(Boolean).join(' · '))),
      h('td', {}, badge(kind, t(`status.${e.status}`))),
      h('td', {}, e.code || ''),
      h('td', {}, said(e, 'message') || ''));
  }

  async function historyEntry(body, id) {
    const e = await api('GET', `/v1/hubspot/history/${encodeURIComponent(id)}`);
    const out = h('div', { id: 'entry-result' });
    append(body, h('p', {}, h('a', { href: '#/history' }, t('back'))), h('h2', {}, t('entry')),
      e.status !== 'success' && e.message ? messageBox(e.status === 'error' ? 'error' : 'warn', said(e, 'message'),
        e.guidance ? h('p', { id: 'entry-guidance' }, `${t('guidance')}: ${said(e, 'guidance')}`) : null) : null,
      h('dl', { class: 'facts', id: 'entry' }, [
        ['ID', e.id], [t('occurredAt'), when(e.occurred_at)], [t('direction'), t(`direction.${e.direction}`)],
        [t('dealName'), e.name || '—'], [t('objectType'), e.object_type ? t(`object.${e.object_type}`) : '—'],
        ['HubSpot', e.hubspot_id || '—'], ['board', e.board_id ? `${e.board_object_type || ''} ${e.board_id}` : '—'],
        [t('status'), t(`status.${e.status}`)], [t('code'), e.code || '—'], [t('message'), said(e, 'message') || '—'],
        [t('detail'), e.detail || '—'], [t('warnings'), (e.warnings || []).join(' / ') || '—'], [t('configVersion'), String(e.config_version)],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])), out);
    if (e.status !== 'success') {
      const retry = h('button', { type: 'button', id: 'retry' }, t('retry'));
      retry.addEventListener('click', () => act(retry, out, async () => {
        await api('POST', `/v1/hubspot/history/${encodeURIComponent(id)}/retry`);
        out.replaceChildren(messageBox('ok', t('retried')));
      }));
      append(body, h('div', { class: 'actions' }, retry));
    }
  }

  // 8. Diagnosis ----------------------------------------------------------------
  function dealIdFrom(input) {
    const text = input.trim();
    if (/^\d+$/.test(text)) return text;
    // HubSpot record URLs end with the deal id: …/record/0-3/<id>[/…]
    const match = text.match(/\/record\/0-3\/(\d+)/) || text.match(/\/deal\/(\d+)/) || text.match(/(\d+)\/?(?:[?#].*)?$/);
    return match ? match[1] : null;
  }

  async function diagnosisScreen(body, rest) {
    const input = h('input', { id: 'diagnosis-deal', size: 50, value: rest[0] || '', required: true });
    const out = h('div', { id: 'diagnosis-result' });
    const submit = h('button', { type: 'submit', id: 'diagnose' }, t('diagnose'));
    const run = async () => {
      const id = dealIdFrom(input.value);
      if (!id) { out.replaceChildren(messageBox('error', t('dealIdOrUrl'))); return; }
      const d = await api('GET', `/v1/hubspot/diagnosis/deals/${id}`);
      out.replaceChildren(diagnosisView(d));
    };
    append(body, h('p', {}, t('diagnosisLead')), h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); act(submit, out, run); } },
      field(t('dealIdOrUrl'), input), h('div', { class: 'field' }, submit)), out);
    if (rest[0]) await run();
  }

  function diagnosisView(d) {
    if (!d.deal) return messageBox('warn', t('notInHubspot'));
    const props = d.deal.properties || d.deal;
    const parts = [h('h2', {}, props.dealname || d.deal_id)];
    if (d.gates) {
      parts.push(h('table', { id: 'gates' }, h('tbody', {}, d.gates.gates.map((g) => h('tr', { 'data-gate': g.gate, 'data-passed': String(g.passed) },
        h('th', { scope: 'row' }, t(`gate.${g.gate}`)),
        h('td', { class: g.passed ? 'pass' : 'fail' }, g.passed ? `✔ ${t('pass')}` : `✘ ${t('fail')}`),
        h('td', {}, lang === 'en' ? g.detail_en : g.detail))))));
    }
    if (d.qualifies !== null && d.qualifies !== undefined) {
      parts.push(messageBox(d.qualifies ? 'ok' : 'warn', `${t('qualifies')}: ${d.qualifies ? t('yes') : t('no')}`));
    }
    if (d.link) parts.push(h('h3', {}, t('link')), h('pre', {}, JSON.stringify(d.link, null, 2)));
    if (d.draft) parts.push(h('h3', {}, t('draftNow')), h('pre', {}, JSON.stringify(d.draft, null, 2)));
    if ((d.decisions || []).length) {
      parts.push(h('h3', {}, t('decisions')), h('table', {}, h('tbody', {}, d.decisions.map((x) => h('tr', {},
        h('td', {}, when(x.at)), h('td', {}, x.outcome), h('td', {}, x.reason), h('td', { class: 'small muted' }, (x.trigger || []).join(', ')))))));
    }
    return h('section', {}, parts);
  }

  // First-connection matching -------------------------------------------------
  async function matchingScreen(body) {
    await dealsBackfill(body);
    const out = h('div', { id: 'matching-result' });
    let state = null;
    try { state = await api('GET', '/v1/hubspot/matching'); } catch (error) { if (error.status !== 404) throw error; }
    const start = h('button', { type: 'button', id: 'start-matching', disabled: state?.state === 'running' }, t('startMatching'));
    start.addEventListener('click', () => act(start, out, async () => {
      await api('POST', '/v1/hubspot/matching');
      render.last = null;
      await render();
    }));
    append(body, h('p', {}, t('matchingLead')), h('div', { class: 'actions' }, start), out);
    if (!state) { append(body, h('p', { class: 'muted' }, t('noMatching'))); return; }
    const r = state.read;
    append(body, h('dl', { class: 'facts', id: 'matching-state', 'data-state': state.state }, [
      [t('matchingState'), badge(state.state === 'done' ? 'ok' : state.state === 'failed' ? 'error' : 'warn', t(`mstate.${state.state}`))],
      [t('phase'), state.phase], [t('reason'), state.reason || '—'],
      [t('read'), `board ${r.board_customers} / ${r.board_contacts} · HubSpot ${r.hubspot_companies} / ${r.hubspot_contacts}`],
      [t('timeLeft'), state.estimated_seconds_left == null ? '—' : t('seconds', state.estimated_seconds_left)],
      ...['sure', 'ambiguous', 'none'].map((g) => [t(`group.${g}`), String(state.groups[g])]),
    ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
    if (state.state === 'running') {
      // Reload while it runs, as long as this screen is shown.
      const hash = location.hash;
      setTimeout(() => { if (location.hash === hash) render(); }, 2000);
      return;
    }
    if (state.state !== 'done') return;
    const group = ['sure', 'ambiguous', 'none'].includes(route().query.get('group')) ? route().query.get('group') : 'sure';
    const tabs = h('nav', { class: 'tabs', 'aria-label': t('candidates') }, ['sure', 'ambiguous', 'none'].map((g) => h('a', {
      class: 'button secondary', href: `#/matching?group=${g}`, 'aria-current': g === group ? 'page' : null, 'data-group': g,
    }, `${t(`group.${g}`)} (${state.groups[g]})`)));
    const page = await api('GET', `/v1/hubspot/matching/proposals?group=${group}&limit=200`);
    const picks = new Map();
    const rows = page.items.map((p) => {
      const name = `pick-${p.id}`;
      const choices = p.candidates.map((c) => {
        const radio = h('input', { type: 'radio', name, value: c.hubspot_id, checked: false, disabled: Boolean(p.approved), 'aria-label': `${p.board.name} → ${c.name}` });
        radio.addEventListener('change', () => picks.set(p.id, c.hubspot_id));
        return h('div', { class: 'candidate' }, h('label', {}, radio, ' ', c.name, ` (${Math.round(c.confidence * 100)}%)`),
          h('div', { class: 'small muted' }, c.reasons.join('・')),
          c.differs.length ? h('div', { class: 'small warn' }, `${t('differs')}: ${c.differs.map((f) => t(`field.${f}`)).join('・')}`) : null);
      });
      return h('tr', { 'data-proposal': p.id, 'data-group': p.group },
        h('td', {}, p.board.name, h('div', { class: 'small muted' }, `${t(`object.${p.board.kind === 'contact' ? 'customer_contact' : 'customer'}`)} ${p.board.id}`)),
        h('td', {}, choices.length ? choices : t('none')),
        h('td', {}, p.approved ? badge('ok', t('approved')) : ''));
    });
    const approveSure = h('button', { type: 'button', id: 'approve-sure' }, t('approveSure'));
    approveSure.addEventListener('click', () => act(approveSure, out, async () => {
      const done = await api('POST', '/v1/hubspot/matching/approve', { group: 'sure' });
      out.replaceChildren(approvedBox(done, out));
    }));
    const approveSelected = h('button', { type: 'button', class: 'secondary', id: 'approve-selected' }, t('approveSelected'));
    approveSelected.addEventListener('click', () => act(approveSelected, out, async () => {
      const choices = [...picks].map(([proposal_id, hubspot_id]) => ({ proposal_id, hubspot_id }));
      if (!choices.length) { out.replaceChildren(messageBox('warn', t('selectFirst'))); return; }
      const done = await api('POST', '/v1/hubspot/matching/approve', { choices });
      out.replaceChildren(approvedBox(done, out));
    }));
    append(body, tabs, h('div', { class: 'actions' }, group === 'sure' ? approveSure : null, group !== 'none' ? approveSelected : null),
      h('table', { id: 'proposals' }, h('thead', {}, h('tr', {},
        [t('boardRecord'), t('candidates'), t('status')].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows)));
  }

  // An approval's result, with its undo while nothing has synced through its links.
  function approvedBox(done, out) {
    if (!done.batch) return messageBox('ok', t('approvedResult', done.linked, done.already, done.refused));
    const undo = h('button', { type: 'button', class: 'secondary', id: 'undo-approval' }, t('undoApproval'));
    undo.addEventListener('click', () => act(undo, out, async () => {
      const undone = await api('POST', '/v1/hubspot/matching/undo', { batch: done.batch });
      out.replaceChildren(messageBox('ok', t('undoneResult', undone.removed, undone.kept)));
    }));
    return messageBox('ok', t('approvedResult', done.linked, done.already, done.refused), h('div', { class: 'actions' }, undo));
  }

  // Existing deals: a count first, then drafts (SPEC §4: explicit).
  async function dealsBackfill(body) {
    const out = h('div', { id: 'backfill-result' });
    let state = null;
    try { state = await api('GET', '/v1/hubspot/backfill'); } catch (error) { if (error.status !== 404) throw error; }
    const since = h('input', { type: 'date', id: 'backfill-since' });
    const start = (mode) => {
      const button = h('button', { type: 'button', id: `backfill-${mode}`, class: mode === 'run' ? null : 'secondary', disabled: state?.state === 'running' },
        mode === 'run' ? t('runDeals') : t('previewDeals'));
      button.addEventListener('click', () => act(button, out, async () => {
        const request = { mode };
        if (since.value) request.modified_since = `${since.value}T00:00:00+09:00`;
        await api('POST', '/v1/hubspot/backfill', request);
        render.last = null;
        await render();
      }));
      return button;
    };
    const parts = [h('h2', {}, t('dealsTitle')), h('p', {}, t('dealsLead')), field(t('modifiedSince'), since),
      h('div', { class: 'actions' }, start('preview'), start('run')), out];
    if (state) {
      parts.push(h('dl', { class: 'facts', id: 'backfill-state', 'data-state': state.state, 'data-mode': state.mode },
        h('dt', {}, t('matchingState')), h('dd', {}, `${t(`bmode.${state.mode}`)}: ${t(`mstate.${state.state}`)}`),
        ['read', 'older', 'linked', 'qualifying', 'already_drafts', 'not_qualifying'].map((k) => [
          h('dt', {}, t(`counts.${k}`)), h('dd', { 'data-count': k }, String(state.counts[k]))])));
      if (state.state === 'running') {
        const hash = location.hash;
        setTimeout(() => { if (location.hash === hash) render(); }, 2000);
      }
    }
    append(body, h('section', { class: 'panel' }, parts), h('h2', {}, t('nav.matching')));
  }

  // Record links (business access) ---------------------------------------------
  async function linksScreen(body) {
    const kind = select([['project', t('object.project')], ['customer', t('object.customer')], ['contact', t('object.customer_contact')]], 'project', { id: 'link-kind' });
    const id = h('input', { id: 'link-board-id', type: 'number', min: '1', required: true });
    const out = h('div', { id: 'link-result' });
    const submit = h('button', { type: 'submit' }, t('show'));
    const show = async () => {
      const path = `/v1/hubspot/links/${kind.value}/${id.value}`;
      const link = await api('GET', path);
      const toggle = h('button', { type: 'button', class: 'secondary' }, link.sync_enabled ? t('turnOff') : t('turnOn'));
      toggle.addEventListener('click', () => act(toggle, out, async () => { await api('PUT', path, { sync_enabled: !link.sync_enabled }); await show(); }));
      const resync = h('button', { type: 'button' }, t('resync'));
      resync.addEventListener('click', () => act(resync, null, async () => { await api('POST', `${path}/resync`); toast(t('done')); }));
      out.replaceChildren(h('dl', { class: 'facts' }, [
        [t('hubspotId'), link.hubspot_id || '—'], [t('syncEnabled'), link.sync_enabled ? t('yes') : t('no')],
        [t('reason'), link.reason_code || '—'], [t('lastSynced'), when(link.last_synced_at)],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])), h('div', { class: 'actions' }, toggle, resync));
    };
    append(body, h('p', {}, t('linksLead')), h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); act(submit, out, show); } },
      field(t('kind'), kind), field(t('boardId'), id), h('div', { class: 'field' }, submit)), out);
  }

  // ---------------------------------------------------------------- start
  // board's web app hands the token over in the fragment (#token=…, never sent
  // to a server); the console keeps it for the tab only (sessionStorage).
  function takeTokenFromFragment() {
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (match) {
      try { session.token = decodeURIComponent(match[1]); } catch { session.token = null; }
      history.replaceState(null, '', `${location.pathname}${location.search}#/`);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    takeTokenFromFragment();
    // The OAuth flow returns here (via board's settings screen) with a confirmation.
    if (new URLSearchParams(location.search).has('confirmation') || new URLSearchParams(location.search).has('hubspot_error')) {
      if (!location.hash.startsWith('#/connection')) history.replaceState(null, '', `${location.pathname}${location.search}#/connection`);
    }
    // The skip link moves focus without changing the route.
    document.querySelector('.skip').addEventListener('click', (event) => {
      event.preventDefault();
      main().focus();
    });
    document.getElementById('lang').addEventListener('click', () => {
      lang = lang === 'ja' ? 'en' : 'ja';
      localStorage.setItem(LANG_KEY, lang);
      render();
    });
    document.getElementById('signout').addEventListener('click', () => { session.token = null; location.hash = '#/'; render(); });
    window.addEventListener('hashchange', () => { if (location.hash.startsWith('#/') || !location.hash) render(); });
    render();
  });

})();
