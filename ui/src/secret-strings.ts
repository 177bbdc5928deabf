// Every user-facing string of the secret proxies (stcp/sudp/xtcp) and of "Connect to a private service" (the
// visitors), read through the i18n catalogues (keys `secret.*` and `visitor.*`) at the moment they are shown.
import { t } from "./i18n";

export const S = {
  get typeStcp(): string {
    return t("secret.typeStcp");
  },
  get typeSudp(): string {
    return t("secret.typeSudp");
  },
  get typeXtcp(): string {
    return t("secret.typeXtcp");
  },
  get secretKey(): string {
    return t("secret.secretKey");
  },
  get secretKeyStored(): string {
    return t("secret.secretKeyStored");
  },
  get secretKeyNew(): string {
    return t("secret.secretKeyNew");
  },
  get allowUsers(): string {
    return t("secret.allowUsers");
  },
  get allowUsersPlaceholder(): string {
    return t("secret.allowUsersPlaceholder");
  },
  get proxySecretRequired(): string {
    return t("secret.proxySecretRequired");
  },
  badUser: (user: string): string => t("secret.badUser", { user }),
  get runningSecret(): string {
    return t("secret.runningSecret");
  },
  runningSecretDetail: (name: string): string => t("secret.runningSecretDetail", { name }),
  get section(): string {
    return t("visitor.section");
  },
  get intro(): string {
    return t("visitor.intro");
  },
  get empty(): string {
    return t("visitor.empty");
  },
  get add(): string {
    return t("visitor.add");
  },
  legend: (name: string): string => t("visitor.legend", { name }),
  get name(): string {
    return t("visitor.name");
  },
  get type(): string {
    return t("visitor.type");
  },
  get serverName(): string {
    return t("visitor.serverName");
  },
  get serverNamePlaceholder(): string {
    return t("visitor.serverNamePlaceholder");
  },
  get serverUser(): string {
    return t("visitor.serverUser");
  },
  get serverUserPlaceholder(): string {
    return t("visitor.serverUserPlaceholder");
  },
  get bindAddr(): string {
    return t("visitor.bindAddr");
  },
  get bindPort(): string {
    return t("visitor.bindPort");
  },
  get fallbackTo(): string {
    return t("visitor.fallbackTo");
  },
  get fallbackNone(): string {
    return t("visitor.fallbackNone");
  },
  get remove(): string {
    return t("visitor.remove");
  },
  removeLabel: (name: string): string => t("visitor.removeLabel", { name }),
  toggleLabel: (name: string): string => t("visitor.toggleLabel", { name }),
  get open(): string {
    return t("visitor.open");
  },
  get copy(): string {
    return t("visitor.copy");
  },
  copied: (addr: string): string => t("visitor.copied", { addr }),
  get copyFailed(): string {
    return t("visitor.copyFailed");
  },
  get toggleNeedsSave(): string {
    return t("visitor.toggleNeedsSave");
  },
  get nameRequired(): string {
    return t("visitor.nameRequired");
  },
  get nameChars(): string {
    return t("visitor.nameChars");
  },
  get nameTaken(): string {
    return t("visitor.nameTaken");
  },
  get serverNameRequired(): string {
    return t("visitor.serverNameRequired");
  },
  get serverNameChars(): string {
    return t("visitor.serverNameChars");
  },
  get serverUserChars(): string {
    return t("visitor.serverUserChars");
  },
  get bindAddrBad(): string {
    return t("visitor.bindAddrBad");
  },
  get bindPortBad(): string {
    return t("visitor.bindPortBad");
  },
  get bindPortNoneOnlyStcp(): string {
    return t("visitor.bindPortNoneOnlyStcp");
  },
  bindPortTaken: (other: string): string => t("visitor.bindPortTaken", { other }),
  get visitorSecretRequired(): string {
    return t("visitor.secretRequired");
  },
  get fallbackNotStcp(): string {
    return t("visitor.fallbackNotStcp");
  },
  get fallbackMissing(): string {
    return t("visitor.fallbackMissing");
  },
  fallbackOff: (name: string): string => t("visitor.fallbackOff", { name }),
  get off(): string {
    return t("visitor.off");
  },
  get offDetail(): string {
    return t("visitor.offDetail");
  },
  get notConnected(): string {
    return t("visitor.notConnected");
  },
  get notConnectedDetail(): string {
    return t("visitor.notConnectedDetail");
  },
  get waiting(): string {
    return t("visitor.waiting");
  },
  get waitingDetail(): string {
    return t("visitor.waitingDetail");
  },
  get noSecret(): string {
    return t("visitor.noSecret");
  },
  get noSecretDetail(): string {
    return t("visitor.noSecretDetail");
  },
  get noPort(): string {
    return t("visitor.noPort");
  },
  get noPortDetail(): string {
    return t("visitor.noPortDetail");
  },
  get ready(): string {
    return t("visitor.ready");
  },
  readyDetail: (addr: string): string => t("visitor.readyDetail", { addr }),
  get viaServer(): string {
    return t("visitor.viaServer");
  },
  get viaServerDetail(): string {
    return t("visitor.viaServerDetail");
  },
  get peerToPeer(): string {
    return t("visitor.peerToPeer");
  },
  get peerToPeerDetail(): string {
    return t("visitor.peerToPeerDetail");
  },
  get viaServerFallback(): string {
    return t("visitor.viaServerFallback");
  },
  viaServerFallbackDetail: (why: string): string => t("visitor.viaServerFallbackDetail", { why }),
  failed: (why: string): string => t("visitor.failed", { why }),
  failedDetail: (why: string): string => t("visitor.failedDetail", { why }),
  /** Field names for the "To save, fix: …" summary. */
  get fieldNames(): Record<string, string> {
    return {
      name: t("visitor.field.name"),
      serverName: t("visitor.field.serverName"),
      serverUser: t("visitor.field.serverUser"),
      bindAddr: t("visitor.field.bindAddr"),
      bindPort: t("visitor.field.bindPort"),
      secretKey: t("visitor.field.secretKey"),
      fallbackTo: t("visitor.field.fallbackTo"),
      allowUsers: t("visitor.field.allowUsers"),
    };
  },
};
