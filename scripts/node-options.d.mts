export declare const NODE_OPTIONS: string;
export declare function withNodeOptions(userOptions: string | undefined): string;
