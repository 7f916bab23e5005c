import type { NextConfig } from 'next';

const nextConfig: NextConfig = {
  // The Herald SDKs are local packages (file:../../clients/js/packages/*):
  // symlinks into clients/js, whose node_modules must not supply a second
  // React. Next.js bundles its own React for the App Router either way.
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
