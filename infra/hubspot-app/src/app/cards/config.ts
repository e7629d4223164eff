// The service's public origin (PUBLIC_BASE_URL). It must also be listed in
// app-hsmeta.json's permittedUrls.fetch; see the README, "Deploying the HubSpot app".
export const SERVICE_BASE_URL = "https://board-hubspot.example.jp";
